@preconcurrency import CPython
import SwiftLaunchCore

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
/// hooks, `runtime.add_stages_inspection_hook` and `compilation.instrumentation_mode`; and, from
/// Triton 3.9 on (`TritonRules.fpsanKnobInKey`), `compilation.fpsan_homomorphic_casts`, which joins
/// the options key.
///
/// Triton sets knobs on the two knob instances (`knobs.runtime.debug = True`, `scope()`, `reset()`
/// all write their `__dict__`), and the class values are plain values. So a knob is the instance's
/// entry when there is one, else the class value read at configure time; when both instance dicts
/// are empty (the usual case) one size check each replaces every lookup. Hook chains are live
/// objects: their `calls` lists are read on every call. Plain pointers and a static string, so the
/// launch path copies it without reference counting; the objects are kept for the life of the process.
///
/// `fpsan_homomorphic_casts` is the one knob of these behind a data descriptor (`env_bool`): it reads
/// the instance's `__dict__` entry when there is one, else `getenv("TRITON_FPSAN_HOMOMORPHIC_CASTS")`
/// on every access. The core follows those semantics: it launches only while the knob reads `False`,
/// the value every natively cached kernel was compiled and keyed with (the dict entry is exactly
/// `False`, or there is none and the variable is unset, "" or "0"); anything else goes to Triton. The
/// glue's version gate checks that the descriptor is Triton's own `env_bool` with that key.
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
    /// Triton 3.9+: guard `compilation.fpsan_homomorphic_casts` too.
    let fpsanKnob: Bool

    /// Borrows nothing: holds new references for the life of the process. Nil, with a Python error
    /// set, when the knobs cannot be read.
    init?(runtime: PyPtr, compilation: PyPtr, hookChainType: PyPtr, rules: TritonRules) {
        fpsanKnob = rules.fpsanKnobInKey
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
            if fpsanKnob && !Self.fpsanEnvironmentReadsFalse() { return "fpsan knob set" }
            return nil
        }
        return failureWithInstanceKnobs()
    }

    /// `getenv_bool("TRITON_FPSAN_HOMOMORPHIC_CASTS", False)` is False for certain: unset, "" or "0"
    /// (what Triton's own knob setter writes for False). Other values step aside, whatever they parse to.
    @inline(__always)
    static func fpsanEnvironmentReadsFalse() -> Bool {
        guard let value = getenv("TRITON_FPSAN_HOMOMORPHIC_CASTS") else { return true }
        return value[0] == 0 || (value[0] == 0x30 && value[1] == 0)
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
        let stagesSet = stages != SL_None()
        SL_DecRef(stages)
        if stagesSet { return "stages inspection hook" }
        if fpsanKnob {
            // The descriptor's `__get__`: the instance entry, transformed by nothing (`env_bool`), else the
            // environment.
            if let value = PyDict_GetItemWithError(compilationDict, Names.fpsanHomomorphicCasts) {
                if value != SL_False() { return "fpsan knob set" }
            } else {
                if PyErr_Occurred() != nil { PyErr_Clear(); return "fpsan knob set" }
                if !Self.fpsanEnvironmentReadsFalse() { return "fpsan knob set" }
            }
        }
        return nil
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
