@preconcurrency import CPython

/// An attribute read straight from an instance's `__dict__`, as attribute lookup finds it when the
/// class defines no data descriptor of that name (the glue's version gate checks that it does not). Names missing
/// from the dict go through `PyObject_GetAttr`, so a deleted attribute behaves as in Python.
@inline(__always)
func instanceAttribute(_ object: PyPtr, dict: PyPtr, _ name: PyPtr) -> PyPtr? {
    if let value = PyDict_GetItemWithError(dict, name) {
        SL_IncRef(value)
        return value
    }
    if PyErr_Occurred() != nil { return nil }
    return PyObject_GetAttr(object, name)
}

/// Triton's knobs that make a launch do more than launch: `runtime.debug`, the launch enter/exit
/// hooks, `runtime.add_stages_inspection_hook` and `compilation.instrumentation_mode`.
///
/// Triton sets knobs on the two knob instances (`knobs.runtime.debug = True`, `scope()`, `reset()`
/// all write their `__dict__`), and the class values are plain values. So a knob is the instance's
/// entry when there is one, else the class value read at configure time; when both instance dicts
/// are empty (the usual case) one size check each replaces every lookup. Hook chains are live
/// objects: their `calls` lists are read on every call. Plain pointers and a static string, so the
/// launch path copies it without reference counting; the objects are kept for the life of the process.
struct KnobGuards {
    let runtimeKnobs: PyPtr
    let compilationKnobs: PyPtr
    let runtimeDict: PyPtr
    let compilationDict: PyPtr
    let hookChainType: PyPtr
    /// Class values, read at configure time (plain values: the version gate checks they are no descriptors).
    let classDebug: PyPtr
    let classEnterHook: PyPtr
    let classExitHook: PyPtr
    let classStagesHook: PyPtr
    let classInstrumentation: PyPtr
    /// The class-level chains' `__dict__`s, to read `calls` without attribute lookup.
    let classEnterDict: PyPtr?
    let classExitDict: PyPtr?
    /// Why every call steps aside while only class values apply (nil: none of them trips).
    let classVerdict: StaticString?

    /// Borrows nothing: holds new references for the life of the process. Nil, with a Python error
    /// set, when the knobs cannot be read.
    init?(runtime: PyPtr, compilation: PyPtr, hookChainType: PyPtr) {
        func classValue(_ owner: PyPtr, _ name: PyPtr) -> PyPtr? {
            guard let type = PyObject_Type(owner) else { return nil }
            defer { SL_DecRef(type) }
            return PyObject_GetAttr(type, name)
        }
        guard let runtimeDict = PyObject_GenericGetDict(runtime, nil) else { return nil }
        guard let compilationDict = PyObject_GenericGetDict(compilation, nil) else {
            SL_DecRef(runtimeDict)
            return nil
        }
        guard let debug = classValue(runtime, Names.debug),
              let enter = classValue(runtime, Names.launchEnterHook),
              let exit = classValue(runtime, Names.launchExitHook),
              let stages = classValue(runtime, Names.stagesHook),
              let instrumentation = classValue(compilation, Names.instrumentationMode)
        else { return nil }
        SL_IncRef(runtime)
        SL_IncRef(compilation)
        SL_IncRef(hookChainType)
        runtimeKnobs = runtime
        compilationKnobs = compilation
        self.runtimeDict = runtimeDict
        self.compilationDict = compilationDict
        self.hookChainType = hookChainType
        classDebug = debug
        classEnterHook = enter
        classExitHook = exit
        classStagesHook = stages
        classInstrumentation = instrumentation
        func chainDict(_ hook: PyPtr) -> PyPtr? {
            guard hasExactType(hook, hookChainType) else { return nil }
            let dict = PyObject_GenericGetDict(hook, nil)
            if dict == nil { PyErr_Clear() }
            return dict
        }
        classEnterDict = chainDict(enter)
        classExitDict = chainDict(exit)
        var verdict: StaticString?
        if isTrue(debug) != false { verdict = "debug" }
        if verdict == nil, isTrue(instrumentation) != false { verdict = "instrumentation" }
        if verdict == nil, stages != SL_None() { verdict = "stages inspection hook" }
        if verdict == nil, !(enter == SL_None() || classEnterDict != nil) || !(exit == SL_None() || classExitDict != nil) {
            verdict = "launch hook"
        }
        PyErr_Clear()
        classVerdict = verdict
    }

    /// Why this call must go to Triton, or nil.
    @inline(__always)
    func failure() -> StaticString? {
        if PyDict_Size(runtimeDict) == 0 && PyDict_Size(compilationDict) == 0 {
            if let classVerdict { return classVerdict }
            if !chainIsEmpty(classEnterHook, dict: classEnterDict) || !chainIsEmpty(classExitHook, dict: classExitDict) {
                return "launch hook"
            }
            return nil
        }
        return failureWithInstanceKnobs()
    }

    private func failureWithInstanceKnobs() -> StaticString? {
        func knob(_ owner: PyPtr, _ dict: PyPtr, _ name: PyPtr, _ classValue: PyPtr) -> PyPtr? {
            if let value = PyDict_GetItemWithError(dict, name) { SL_IncRef(value); return value }
            if PyErr_Occurred() != nil { return nil }
            SL_IncRef(classValue)
            return classValue
        }
        func truthy(_ value: PyPtr?) -> Bool {
            guard let value else { PyErr_Clear(); return true }
            defer { SL_DecRef(value) }
            return isTrue(value) != false
        }
        if truthy(knob(runtimeKnobs, runtimeDict, Names.debug, classDebug)) { return "debug" }
        if truthy(knob(compilationKnobs, compilationDict, Names.instrumentationMode, classInstrumentation)) {
            return "instrumentation"
        }
        func hookIsEmpty(_ name: PyPtr, _ classValue: PyPtr) -> Bool {
            guard let hook = knob(runtimeKnobs, runtimeDict, name, classValue) else { PyErr_Clear(); return false }
            defer { SL_DecRef(hook) }
            let dict = hook == classEnterHook ? classEnterDict : hook == classExitHook ? classExitDict : nil
            return chainIsEmpty(hook, dict: dict)
        }
        if !hookIsEmpty(Names.launchEnterHook, classEnterHook) || !hookIsEmpty(Names.launchExitHook, classExitHook) {
            return "launch hook"
        }
        guard let stages = knob(runtimeKnobs, runtimeDict, Names.stagesHook, classStagesHook) else {
            PyErr_Clear()
            return "stages inspection hook"
        }
        defer { SL_DecRef(stages) }
        return stages == SL_None() ? nil : "stages inspection hook"
    }

    /// `None`, or a `HookChain` with no calls.
    @inline(__always)
    private func chainIsEmpty(_ hook: PyPtr, dict: PyPtr?) -> Bool {
        if hook == SL_None() { return true }
        guard hasExactType(hook, hookChainType) else { return false }
        let calls: PyPtr?
        if let dict {
            calls = instanceAttribute(hook, dict: dict, Names.calls)
        } else {
            calls = PyObject_GetAttr(hook, Names.calls)
        }
        guard let calls else { PyErr_Clear(); return false }
        defer { SL_DecRef(calls) }
        return SL_ListCheck(calls) != 0 && PyList_Size(calls) == 0
    }
}
