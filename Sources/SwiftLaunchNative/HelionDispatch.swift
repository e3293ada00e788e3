@preconcurrency import CPython
import SwiftLaunchCore

// Helion's per-call dispatch in Swift. `swiftlaunch.helion.install()` replaces `Kernel.__call__` with
// a thin Python shim that calls `_native.helion_dispatch(kernel, args)`; that either runs the kernel
// (the host wrapper Helion would run, with swiftlaunch's launcher as `_launcher=`) or returns a
// sentinel that hands the call back to Helion's own `__call__`. Entries are learned only from calls
// Helion dispatched itself, and only when Helion's own prepared-call guard accepts those arguments
// (`_native.helion_learn`, from the glue's miss path); an entry reproduces that guard exactly (see
// `HelionGuard` in the core), or the call goes to Helion.

/// Objects the dispatch compares against or calls, handed over by `helion_configure`; kept for the
/// life of the process.
final class HelionConfig {
    /// Returned to the shim: "Helion, run this and let the glue learn from it" / "Helion, run this".
    let handBack: PyPtr
    let refused: PyPtr
    let kernelType: PyPtr
    let intType: PyPtr
    let floatType: PyPtr
    let boolType: PyPtr
    let noneType: PyPtr
    let strType: PyPtr
    let dtypeType: PyPtr
    let deviceType: PyPtr
    let constExprType: PyPtr
    let containerTypes: [PyPtr]
    /// `helion.runtime.kernel`'s globals: Helion calls `dist.is_initialized()` through its global
    /// `dist` on every call, and so does the dispatch.
    let kernelGlobals: PyPtr
    /// `torch._C._is_torch_function_mode_enabled`: under a torch function mode, Helion's guard reads
    /// `.dtype`, `.shape`, `.stride()` and `.device` through the mode, so the call goes to Helion.
    let functionModeEnabled: PyPtr
    /// `torch._C.TensorBase.stride`'s C function: `x.stride` must resolve to it, bound to `x`.
    let strideFunction: UnsafeRawPointer
    let capacity: Int
    var enabled = true

    init(handBack: PyPtr, refused: PyPtr, kernelType: PyPtr, scalarTypes: [PyPtr], objectTypes: [PyPtr],
         constExprType: PyPtr, containerTypes: [PyPtr], kernelGlobals: PyPtr, functionModeEnabled: PyPtr,
         strideFunction: UnsafeRawPointer, capacity: Int) {
        for object in [handBack, refused, kernelType, constExprType, kernelGlobals, functionModeEnabled]
            + scalarTypes + objectTypes + containerTypes {
            SL_IncRef(object)
        }
        self.handBack = handBack
        self.refused = refused
        self.kernelType = kernelType
        (intType, floatType, boolType, noneType, strType) =
            (scalarTypes[0], scalarTypes[1], scalarTypes[2], scalarTypes[3], scalarTypes[4])
        (dtypeType, deviceType) = (objectTypes[0], objectTypes[1])
        self.constExprType = constExprType
        self.containerTypes = containerTypes
        self.kernelGlobals = kernelGlobals
        self.functionModeEnabled = functionModeEnabled
        self.strideFunction = strideFunction
        self.capacity = capacity
    }

    static func typeWord(_ object: PyPtr) -> UInt64 { UInt64(UInt(bitPattern: SL_Type(object))) }
}

/// One learned wrapper: the bound kernel it belongs to (weakly: a bound kernel holds its kernel, and
/// the kernel must be free to go), the wrapper Helion ran, and the objects compared by equality.
/// Plain owned pointers, so the hit path reads them without reference counting.
final class HelionEntry {
    enum Recorded {
        /// A str, torch.dtype or torch.device argument: `arg == recorded`.
        case equal(PyRef)
        /// An `hl.constexpr(v)` argument with a non-float `v`: `arg.value == v`.
        case constExprValue(PyRef)
        /// An `hl.constexpr(v)` argument with a float `v`: `arg.value.hex() == v.hex()`.
        case constExprFloat(UInt64)
    }

    /// A weak reference to the bound kernel (owned).
    let boundRef: PyPtr
    /// The host wrapper (owned).
    let run: PyPtr
    let recorded: [(position: Int, Recorded)]
    let hasRecorded: Bool
    /// The second stage: whether this entry's whole call runs natively (`HelionNativeRun`).
    var stage: NativeRunStage = .unrecorded

    /// Takes over `boundRef`; adds a reference of its own to `run`.
    init(boundRef: PyPtr, run: PyPtr, recorded: [(position: Int, Recorded)]) {
        SL_IncRef(run)
        self.boundRef = boundRef
        self.run = run
        self.recorded = recorded
        hasRecorded = !recorded.isEmpty
    }

    deinit {
        SL_DecRef(boundRef)
        SL_DecRef(run)
    }
}

/// The entries of one Helion kernel, valid for one (reset, specialization) generation pair.
final class HelionKernelTable {
    /// A weak reference to the kernel, whose callback drops this table when the kernel goes.
    let kernelRef: PyRef
    /// The launcher passed as `_launcher=` (owned), made on the first learn.
    private(set) var launcher: PyPtr?
    /// Per parameter: annotated constexpr (Helion then compares the value of an int, float or bool).
    private(set) var constexprMask = UnsafeMutableBufferPointer<Bool>(start: nil, count: 0)
    var generations: (reset: Int64, specialization: Int64) = (-1, -1)
    let entries: HelionDispatchTable<HelionEntry>
    /// Why calls go to Helion: for every call of this generation (`guardObject` nil), or while
    /// Helion's published prepared call is the one whose guard function is `guardObject`.
    var refusal: (guardObject: PyRef?, reason: String)? {
        didSet { refused = refusal != nil }
    }
    /// `refusal != nil`, read on every call without copying the refusal (and its references).
    private(set) var refused = false

    init(kernelRef: PyRef, capacity: Int) {
        self.kernelRef = kernelRef
        entries = HelionDispatchTable(capacity: capacity)
    }

    deinit {
        if let launcher { SL_DecRef(launcher) }
        constexprMask.deallocate()
    }

    func reset(to generations: (reset: Int64, specialization: Int64)) {
        self.generations = generations
        entries.removeAll()
        refusal = nil
    }

    /// Takes over a new reference.
    func setLauncher(_ launcher: PyPtr) {
        if let old = self.launcher { SL_DecRef(old) }
        self.launcher = launcher
    }

    /// A new mask drops every entry (they were keyed under the old one).
    func setMask(_ mask: [Bool]) {
        guard !constexprMask.elementsEqual(mask) else { return }
        entries.removeAll()
        constexprMask.deallocate()
        constexprMask = .allocate(capacity: mask.count)
        _ = constexprMask.initialize(from: mask)
    }
}

enum HelionDispatch {
    nonisolated(unsafe) static var config: HelionConfig? {
        // Calls hold the configuration unretained: a replaced one must never be freed.
        willSet { if let config { retiredConfigs.append(config) } }
    }
    nonisolated(unsafe) private static var retiredConfigs: [HelionConfig] = []
    nonisolated(unsafe) static var tables: [UInt: HelionKernelTable] = [:]
    /// Tables of kernels that went, released on the next learn (not inside the weakref callback that
    /// removed them, where releasing the weak reference itself would free it during its own callback).
    nonisolated(unsafe) static var released: [HelionKernelTable] = []
    nonisolated(unsafe) static var dispatched = 0
    nonisolated(unsafe) static var learned = 0
    /// `getattr(object, name, None)` without raising: `PyObject_GetOptionalAttr` (3.13+) or
    /// `_PyObject_LookupAttr` (3.7 – 3.12), the function Python's own `getattr` with a default uses.
    nonisolated(unsafe) static var optionalAttribute: OptionalAttribute?
    typealias OptionalAttribute = @convention(c) (PyPtr?, PyPtr?, UnsafeMutablePointer<PyPtr?>?) -> Int32
    /// `_PyObject_GetDictPtr` (exported by CPython 3.10 – 3.13, not in the limited API): where an
    /// object's instance dict pointer is, NULL inside meaning it has none. For a managed dict whose
    /// attributes still sit in inline values it first makes the dict from them (once per object, no
    /// change Python code can see).
    nonisolated(unsafe) static var dictPointer: DictPointer?
    typealias DictPointer = @convention(c) (PyPtr?) -> UnsafeMutablePointer<PyPtr?>?

    enum Resolution {
        case hit(HelionEntry, launcher: PyPtr)
        case handBack
        case refused(String)
    }

    static func resolveOptionalAttribute() -> OptionalAttribute? {
        for name in ["PyObject_GetOptionalAttr", "_PyObject_LookupAttr"] {
            if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) {
                // Sound: both are declared `int (PyObject *, PyObject *, PyObject **)` in CPython.
                return unsafeBitCast(symbol, to: OptionalAttribute.self)
            }
        }
        return nil
    }

    // MARK: - Dispatch

    /// Everything Helion's `Kernel.__call__` checks before it runs `prepared.bound._run(*args)`, in an
    /// order that runs Python code (`dist.is_initialized()`) before any table is touched.
    static func resolve(_ config: HelionConfig, kernel: PyPtr, args: PyPtr) -> Resolution {
        guard config.enabled else { return .refused("helion: uninstalled") }
        guard hasExactType(kernel, config.kernelType) else { return .refused("helion: Kernel subclass") }
        switch functionModeActive(config) {
        case .some(false): break
        case .some(true): return .refused("helion: torch function mode")
        case .none: PyErr_Clear(); return .refused("helion: torch function mode")
        }
        switch distributedInitialized(config) {
        case .some(false): break
        case .some(true): return .refused("helion: process group initialized")
        case .none: PyErr_Clear(); return .refused("helion: dist.is_initialized() raised")
        }
        // Unretained: no Python code runs from here until the call, and the table stays in `tables`
        // while its kernel (an argument of this call) is alive.
        guard let found = tables[UInt(bitPattern: kernel)] else { return .handBack }
        unowned(unsafe) let table = found
        guard let kernelDict = PyObject_GenericGetDict(kernel, nil) else {
            PyErr_Clear()
            return .refused("helion: kernel attributes unreadable")
        }
        defer { SL_DecRef(kernelDict) }
        guard let generations = readGenerations(config, kernelDict) else { return .refused("helion: generations unreadable") }
        // Helion's `_validate_structural_policy` does nothing only while there is no policy.
        guard PyDict_GetItemWithError(kernelDict, HelionNames.structuralPolicy) == SL_None() else {
            PyErr_Clear()
            return .refused("helion: structural policy")
        }
        if generations != table.generations {
            // `reset()` or a new specialization: every entry and refusal is stale.
            table.reset(to: generations)
            return .handBack
        }
        if table.refused, let refusal = table.refusal, refusal.guardObject == nil { return .refused(refusal.reason) }
        let count = PyTuple_Size(args)
        // More arguments than parameters never match (Helion raises its TypeError), and a table without
        // entries has nothing to look up.
        if table.entries.count > 0 && count <= table.constexprMask.count {
            guard let reader = Runtime.shared.nativeReader else { return .refused("helion: native tensor reader off") }
            let found: Resolution? = withUnsafeTemporaryAllocation(of: HelionArgument.self, capacity: max(count, 1)) {
                arguments -> Resolution? in
                if let reason = observe(config, reader, args: args, mask: table.constexprMask, into: arguments) {
                    return .refused(reason)
                }
                let observed = UnsafeBufferPointer(rebasing: arguments[0..<count])
                return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: HelionGuard.wordCount(observed)) { words in
                    let used = HelionGuard.write(observed, into: words)
                    let key = UnsafeBufferPointer(rebasing: words[0..<used])
                    while let entry = table.entries.lookup(key, confirm: { confirm($0, config, args) }) {
                        // Helion runs `prepared.bound._run`: the entry holds only while that is still the
                        // wrapper it learned (`set_config` replaces it) and the bound kernel is alive.
                        if currentRun(of: entry) == entry.run, let launcher = table.launcher {
                            return .hit(entry, launcher: launcher)
                        }
                        table.entries.removeAll { $0 === entry }
                    }
                    return nil
                }
            }
            if let found { return found }
        }
        if table.refused, let refusal = table.refusal, let guardObject = refusal.guardObject?.object,
           publishedGuard(kernelDict) == guardObject {
            return .refused(refusal.reason)
        }
        return .handBack
    }

    /// `torch._C._is_torch_function_mode_enabled()`; nil with a Python error set.
    private static func functionModeActive(_ config: HelionConfig) -> Bool? {
        guard let result = call(config.functionModeEnabled) else { return nil }
        defer { SL_DecRef(result) }
        return isTrue(result)
    }

    /// `dist.is_initialized()`, looked up as Helion's code looks it up; nil with a Python error set.
    private static func distributedInitialized(_ config: HelionConfig) -> Bool? {
        guard let dist = PyDict_GetItemWithError(config.kernelGlobals, HelionNames.dist) else {
            if PyErr_Occurred() == nil { raise(SL_ExcRuntimeError(), "helion.runtime.kernel has no dist") }
            return nil
        }
        guard let function = PyObject_GetAttr(dist, HelionNames.isInitialized) else { return nil }
        defer { SL_DecRef(function) }
        guard let result = call(function) else { return nil }
        defer { SL_DecRef(result) }
        return isTrue(result)
    }

    /// The kernel's `_reset_generation` and `_specialization_generation`, read from its `__dict__`
    /// (the glue's gate checks that `Kernel` defines neither name, so the dict is where Python finds them).
    private static func readGenerations(_ config: HelionConfig, _ kernelDict: PyPtr) -> (reset: Int64, specialization: Int64)? {
        func read(_ name: PyPtr) -> Int64? {
            guard let value = PyDict_GetItemWithError(kernelDict, name), hasExactType(value, config.intType) else {
                PyErr_Clear()
                return nil
            }
            var overflow: Int32 = 0
            let number = PyLong_AsLongLongAndOverflow(value, &overflow)
            guard overflow == 0, !(number == -1 && PyErr_Occurred() != nil) else { PyErr_Clear(); return nil }
            return number
        }
        guard let reset = read(HelionNames.resetGeneration), let specialization = read(HelionNames.specializationGeneration)
        else { return nil }
        return (reset, specialization)
    }

    /// The `_run` of the entry's bound kernel now (borrowed), or nil when the bound kernel is gone.
    private static func currentRun(of entry: HelionEntry) -> PyPtr? {
        // Borrowed: the weak reference's target (None once it went), read below with no Python code
        // in between that could free it.
        let bound = PyWeakref_GetObject(entry.boundRef)
        guard let bound, bound != SL_None() else { PyErr_Clear(); return nil }
        guard let dict = PyObject_GenericGetDict(bound, nil) else { PyErr_Clear(); return nil }
        defer { SL_DecRef(dict) }
        let run = PyDict_GetItemWithError(dict, HelionNames.run)
        if run == nil { PyErr_Clear() }
        return run
    }

    /// The guard function of the prepared call Helion published (`kernel._prepared_call._matches_args`), borrowed
    /// only for an identity comparison.
    private static func publishedGuard(_ kernelDict: PyPtr) -> PyPtr? {
        guard let prepared = PyDict_GetItemWithError(kernelDict, HelionNames.preparedCall), prepared != SL_None() else {
            PyErr_Clear()
            return nil
        }
        guard let guardObject = PyObject_GetAttr(prepared, HelionNames.matchesArgs) else { PyErr_Clear(); return nil }
        SL_DecRef(guardObject)  // the prepared call still holds it
        return guardObject
    }

    /// Reduces each argument to what Helion's guard compares, or says why it cannot.
    /// Runs no Python code: attribute lookups on exact tensors find only the instance dict and torch's
    /// own descriptors (the glue's gate checks that), and the rest are type checks and C reads.
    static func observe(_ config: HelionConfig, _ reader: NativeTensorReader, args: PyPtr, mask: UnsafeMutableBufferPointer<Bool>,
                        into arguments: UnsafeMutableBufferPointer<HelionArgument>) -> String? {
        let count = PyTuple_Size(args)
        unowned(unsafe) let runtime = Runtime.shared
        return withUnsafeTemporaryAllocation(of: UInt.self, capacity: max(count, 1)) { identities -> String? in
            for index in 0..<count {
                let object = PyTuple_GetItem(args, index)!
                identities[index] = UInt(bitPattern: object)
                let type = HelionConfig.typeWord(object)
                let argument: HelionArgument
                if runtime.isTensor(object) {
                    if let reason = plainTensorAttributes(config, object) { return reason }
                    guard let fields = reader.guardFields(object) else { return "helion: unreadable tensor" }
                    argument = .tensor(type: type, fields, alias: -1)
                } else if hasExactType(object, config.intType) || hasExactType(object, config.floatType)
                            || hasExactType(object, config.boolType) {
                    if mask[index] {
                        guard let value = constexprWord(config, object) else {
                            return "helion: constexpr int outside int64"
                        }
                        argument = .value(type: type, value)
                    } else {
                        argument = .typeOnly(type: type)
                    }
                } else if object == SL_None() {
                    argument = .typeOnly(type: type)
                } else if hasExactType(object, config.strType) || hasExactType(object, config.dtypeType)
                            || hasExactType(object, config.deviceType) || hasExactType(object, config.constExprType) {
                    argument = .object(type: type)
                } else if config.containerTypes.contains(where: { hasExactType(object, $0) }) {
                    return "helion: container argument"
                } else {
                    return "helion: argument type not mirrored"
                }
                (arguments.baseAddress! + index).initialize(to: argument)
            }
            HelionGuard.resolveAliases(UnsafeMutableBufferPointer(rebasing: arguments[0..<count]),
                                       identities: UnsafeBufferPointer(rebasing: identities[0..<count]))
            return nil
        }
    }

    /// Helion's guard requires `getattr(x, '_dynamo_static_indices', None) is None` and calls
    /// `x.stride()`. The gate checks that neither torch.Tensor nor Parameter defines either name
    /// (`stride` is TensorBase's method), so what is left is the tensor's instance dict: no static
    /// indices there, and no `stride` there shadowing torch's method.
    private static func plainTensorAttributes(_ config: HelionConfig, _ object: PyPtr) -> String? {
        if let dictPointer {
            // Most tensors have no instance dict at all: one read answers both questions.
            if let slot = dictPointer(object) {
                guard let dict = slot.pointee else { return nil }
                if let indices = PyDict_GetItemWithError(dict, HelionNames.staticIndices), indices != SL_None() {
                    return "helion: _dynamo_static_indices"
                }
                if PyDict_GetItemWithError(dict, HelionNames.stride) != nil { return "helion: stride is not torch's" }
                if PyErr_Occurred() != nil { PyErr_Clear(); return "helion: tensor attributes unreadable" }
                return nil
            }
            PyErr_Clear()
        }
        // Without the dict pointer: both looked up as Python looks them up.
        guard let lookup = optionalAttribute else { return "helion: no optional attribute lookup" }
        var found: PyPtr?
        let staticIndices = lookup(object, HelionNames.staticIndices, &found)
        if staticIndices < 0 { PyErr_Clear(); return "helion: _dynamo_static_indices" }
        if let found {
            let isNone = found == SL_None()
            SL_DecRef(found)
            if !isNone { return "helion: _dynamo_static_indices" }
        }
        var method: PyPtr?
        guard lookup(object, HelionNames.stride, &method) == 1, let method else {
            PyErr_Clear()
            return "helion: stride is not torch's"
        }
        defer { SL_DecRef(method) }
        guard SL_CFunctionCheck(method) != 0, let function = PyCFunction_GetFunction(method),
              unsafeBitCast(function, to: UnsafeRawPointer.self) == config.strideFunction,
              PyCFunction_GetSelf(method) == object
        else { return "helion: stride is not torch's" }
        return nil
    }

    /// A constexpr scalar's word: an int's value (nil outside int64), a bool's 0/1, a float's bits.
    private static func constexprWord(_ config: HelionConfig, _ object: PyPtr) -> UInt64? {
        if hasExactType(object, config.boolType) { return object == SL_True() ? 1 : 0 }
        if hasExactType(object, config.floatType) { return PyFloat_AsDouble(object).bitPattern }
        var overflow: Int32 = 0
        let value = PyLong_AsLongLongAndOverflow(object, &overflow)
        guard overflow == 0, !(value == -1 && PyErr_Occurred() != nil) else { PyErr_Clear(); return nil }
        return UInt64(bitPattern: value)
    }

    /// Whether the arguments compared by equality equal the entry's recorded ones. These are exact
    /// str, dtype, device and ConstExpr objects (their types are in the words), so every comparison
    /// is CPython's or torch's C code.
    static func confirm(_ entry: HelionEntry, _ config: HelionConfig, _ args: PyPtr) -> Bool {
        guard entry.hasRecorded else { return true }
        for (position, recorded) in entry.recorded {
            let object = PyTuple_GetItem(args, position)!
            switch recorded {
            case let .equal(value):
                let equal = PyObject_RichCompareBool(object, value.object, Py_EQ)
                if equal != 1 { PyErr_Clear(); return false }
            case let .constExprValue(value):
                // `.value` of the NamedTuple is its item 0 (the gate checks the field is a tuple getter).
                guard let inner = constExprInner(config, object) else { return false }
                let equal = PyObject_RichCompareBool(inner, value.object, Py_EQ)
                if equal != 1 { PyErr_Clear(); return false }
            case let .constExprFloat(bits):
                guard let inner = constExprInner(config, object), hasExactType(inner, config.floatType),
                      PyFloat_AsDouble(inner).bitPattern == bits
                else { return false }
            }
        }
        return true
    }

    /// An `hl.constexpr(...)`'s value when it is an exact int, bool, float, str or None (borrowed);
    /// nil for anything else, whose `==` could run Python code.
    private static func constExprInner(_ config: HelionConfig, _ object: PyPtr) -> PyPtr? {
        guard PyTuple_Size(object) == 1, let inner = PyTuple_GetItem(object, 0) else { PyErr_Clear(); return nil }
        let plain = [config.intType, config.boolType, config.floatType, config.strType, config.noneType]
        return plain.contains(where: { hasExactType(inner, $0) }) ? inner : nil
    }

    /// Calls `run(*args, _launcher=launcher)`.
    static func run(_ entry: HelionEntry, launcher: PyPtr, args: PyPtr) -> PyPtr? {
        let count = PyTuple_Size(args)
        // The entry (and with it `run`) and the launcher stay alive through the call even if the
        // wrapper's Python code changes the table.
        let launcherRef = PyRef(borrowing: launcher)
        return withExtendedLifetime((entry, launcherRef)) {
            withUnsafeTemporaryAllocation(of: PyPtr?.self, capacity: count + 2) { slots -> PyPtr? in
                // Sound: slot 0 stays free for the arguments-offset flag; the arguments are borrowed from
                // the tuple, which the caller holds for the whole call.
                slots[0] = nil
                for index in 0..<count { slots[index + 1] = PyTuple_GetItem(args, index) }
                slots[count + 1] = launcher
                return call(entry.run, UnsafePointer(slots.baseAddress! + 1),
                            count: count | SL_VectorcallArgumentsOffset(), kwnames: HelionNames.launcherKeyword)
            }
        }
    }
}

/// Interned names, made by `helion_configure`.
enum HelionNames {
    nonisolated(unsafe) static var resetGeneration: PyPtr!
    nonisolated(unsafe) static var specializationGeneration: PyPtr!
    nonisolated(unsafe) static var structuralPolicy: PyPtr!
    nonisolated(unsafe) static var run: PyPtr!
    nonisolated(unsafe) static var preparedCall: PyPtr!
    nonisolated(unsafe) static var matchesArgs: PyPtr!
    nonisolated(unsafe) static var staticIndices: PyPtr!
    nonisolated(unsafe) static var stride: PyPtr!
    nonisolated(unsafe) static var dist: PyPtr!
    nonisolated(unsafe) static var isInitialized: PyPtr!
    /// `("_launcher",)`: the keyword names of a wrapper call.
    nonisolated(unsafe) static var launcherKeyword: PyPtr!

    static func make() -> Bool {
        if resetGeneration != nil { return true }
        let texts = ["_reset_generation", "_specialization_generation", "_cute_structural_policy", "_run", "_prepared_call",
                     "_matches_args", "_dynamo_static_indices", "stride", "dist", "is_initialized", "_launcher"]
        var made: [PyPtr] = []
        for text in texts {
            guard let name = PyUnicode_InternFromString(text) else { return false }
            made.append(name)
        }
        guard let keywords = PyTuple_New(1) else { return false }
        SL_IncRef(made[10])
        PyTuple_SetItem(keywords, 0, made[10])
        (resetGeneration, specializationGeneration, structuralPolicy, run, preparedCall) =
            (made[0], made[1], made[2], made[3], made[4])
        (matchesArgs, staticIndices, stride, dist, isInitialized) = (made[5], made[6], made[7], made[8], made[9])
        launcherKeyword = keywords
        return true
    }
}

// MARK: - Entry points

/// `_native.helion_dispatch(kernel, args)`: the kernel's result, or one of the two sentinels given to
/// `helion_configure` (hand back and learn / hand back only).
let helionDispatchFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = { _, args, nargs in
    guard let configured = HelionDispatch.config else {
        raise(SL_ExcRuntimeError(), "helion_dispatch before helion_configure")
        return nil
    }
    // Unretained: configurations are never freed.
    unowned(unsafe) let config = configured
    guard let args, nargs == 2, let kernel = args[0], let arguments = args[1], SL_TupleCheck(arguments) != 0 else {
        raise(SL_ExcTypeError(), "helion_dispatch(kernel, args: tuple)")
        return nil
    }
    return HelionDispatch.dispatch(config, kernel: kernel, args: arguments)
}

extension HelionDispatch {
    /// One call: the result of the native dispatch, or the glue's hand-back or refused marker (a new
    /// reference either way; nil with the call's exception).
    static func dispatch(_ config: HelionConfig, kernel: PyPtr, args: PyPtr) -> PyPtr? {
        switch resolve(config, kernel: kernel, args: args) {
        case let .hit(entry, launcher):
            dispatched &+= 1
            return HelionNativeRun.hit(entry, launcher: launcher, args: args)
        case .handBack:
            SL_IncRef(config.handBack)
            return config.handBack
        case let .refused(reason):
            Stats.fallback(reason)
            SL_IncRef(config.refused)
            return config.refused
        }
    }
}

/// `_native.helion_lookup(kernel, args)` → the wrapper `helion_dispatch` would call, else the reason
/// it would hand the call back (a str; "" for a plain miss). Calls nothing and counts nothing; for tests.
let helionLookupFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = { _, args, nargs in
    guard let config = HelionDispatch.config, let args, nargs == 2, let kernel = args[0], let arguments = args[1],
          SL_TupleCheck(arguments) != 0
    else {
        raise(SL_ExcTypeError(), "helion_lookup(kernel, args: tuple) after helion_configure")
        return nil
    }
    switch HelionDispatch.resolve(config, kernel: kernel, args: arguments) {
    case let .hit(entry, _):
        SL_IncRef(entry.run)
        return entry.run
    case .handBack: return pyString("")
    case let .refused(reason): return pyString(reason)
    }
}

/// `_native.helion_learn(kernel, args, bound, run, reset_generation, specialization_generation,
/// guard, constexpr_mask, launcher_factory)` → None when an entry was learned, else why not (a str,
/// counted; later calls while Helion's prepared call has guard function `guard` go to Helion with it).
/// The glue calls this only after Helion ran the call and its prepared call (`bound`, generations and
/// `guard`) accepts `args`, with `run` being `bound._run`.
let helionLearnFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = { _, args, nargs in
    HelionDispatch.releaseGoneTables()
    guard let config = HelionDispatch.config, let args, nargs == 9, let kernel = args[0], let arguments = args[1],
          let bound = args[2], let run = args[3], let resetObject = args[4], let specializationObject = args[5],
          let guardObject = args[6], let maskObject = args[7], let factory = args[8], SL_TupleCheck(arguments) != 0,
          SL_TupleCheck(maskObject) != 0
    else {
        raise(SL_ExcTypeError(), "helion_learn takes 9 arguments (kernel, args: tuple, ..., mask: tuple, factory)")
        return nil
    }
    let reset = PyLong_AsLongLong(resetObject), specialization = PyLong_AsLongLong(specializationObject)
    if PyErr_Occurred() != nil { return nil }
    var mask: [Bool] = []
    for index in 0..<PyTuple_Size(maskObject) { mask.append(PyTuple_GetItem(maskObject, index)! == SL_True()) }
    guard let table = HelionDispatch.table(for: kernel, config: config) else { return nil }
    if table.generations != (reset, specialization) { table.reset(to: (reset, specialization)) }
    table.setMask(mask)
    func refuse(_ reason: String) -> PyPtr? {
        Stats.fallback(reason)
        table.refusal = (PyRef(borrowing: guardObject), reason)
        return pyString(reason)
    }
    guard hasExactType(kernel, config.kernelType) else { return refuse("helion: Kernel subclass") }
    guard let reader = Runtime.shared.nativeReader else { return refuse("helion: native tensor reader off") }
    let count = PyTuple_Size(arguments)
    guard count <= mask.count else { return refuse("helion: more arguments than parameters") }
    var recorded: [(position: Int, HelionEntry.Recorded)] = []
    let failure: String? = withUnsafeTemporaryAllocation(of: HelionArgument.self, capacity: max(count, 1)) { observed in
        if let reason = HelionDispatch.observe(config, reader, args: arguments, mask: table.constexprMask, into: observed) {
            return reason
        }
        for index in 0..<count {
            guard case .object = observed[index] else { continue }
            let object = PyTuple_GetItem(arguments, index)!
            guard hasExactType(object, config.constExprType) else {
                recorded.append((index, .equal(PyRef(borrowing: object))))
                continue
            }
            guard PyTuple_Size(object) == 1, let inner = PyTuple_GetItem(object, 0) else {
                PyErr_Clear()
                return "helion: constexpr value not mirrored"
            }
            if hasExactType(inner, config.floatType) {
                let value = PyFloat_AsDouble(inner)
                // Helion refuses NaN constexprs itself; a NaN here means something else is going on.
                guard !value.isNaN else { return "helion: constexpr value not mirrored" }
                recorded.append((index, .constExprFloat(value.bitPattern)))
            } else if [config.intType, config.boolType, config.strType, config.noneType].contains(where: { hasExactType(inner, $0) }) {
                recorded.append((index, .constExprValue(PyRef(borrowing: inner))))
            } else {
                return "helion: constexpr value not mirrored"
            }
        }
        let words = UnsafeBufferPointer(rebasing: observed[0..<count])
        let key = [UInt64](unsafeUninitializedCapacity: HelionGuard.wordCount(words)) { buffer, written in
            written = HelionGuard.write(words, into: buffer)
        }
        if table.launcher == nil {
            guard let launcher = call(factory) else { return "" }
            table.setLauncher(launcher)
        }
        guard let boundRef = PyWeakref_NewRef(bound, nil) else { return "" }
        let entry = HelionEntry(boundRef: boundRef, run: run, recorded: recorded)
        key.withUnsafeBufferPointer { key in
            // An entry that accepts these arguments guards the same calls; the new one replaces it.
            _ = table.entries.insert(key, entry, sameGuard: { HelionDispatch.confirm($0, config, arguments) })
        }
        return nil
    }
    if let failure {
        if failure.isEmpty { return nil }  // a Python error from the launcher factory or the weak reference
        return refuse(failure)
    }
    HelionDispatch.learned &+= 1
    Stats.shared.misses &+= 1
    return SL_NewRefNone()
}

/// `_native.helion_refuse(kernel, reason, guard, reset_generation, specialization_generation)`:
/// counts `reason`; then `guard` True: every call of this kernel in these generations goes to Helion
/// with that reason; a guard function: while Helion's prepared call has it; None: nothing more.
let helionRefuseFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = { _, args, nargs in
    guard let config = HelionDispatch.config, let args, nargs == 5, let kernel = args[0], let reasonObject = args[1],
          let guardObject = args[2], let resetObject = args[3], let specializationObject = args[4],
          let reason = swiftString(reasonObject)
    else {
        if PyErr_Occurred() == nil { raise(SL_ExcTypeError(), "helion_refuse(kernel, reason: str, guard, reset, specialization)") }
        return nil
    }
    Stats.fallback(reason)
    if guardObject == SL_None() { return SL_NewRefNone() }
    let reset = PyLong_AsLongLong(resetObject), specialization = PyLong_AsLongLong(specializationObject)
    if PyErr_Occurred() != nil { return nil }
    guard let table = HelionDispatch.table(for: kernel, config: config) else { return nil }
    if table.generations != (reset, specialization) { table.reset(to: (reset, specialization)) }
    table.refusal = (guardObject == SL_True() ? nil : PyRef(borrowing: guardObject), reason)
    return SL_NewRefNone()
}

extension HelionDispatch {
    /// The kernel's table, made on first use with a weak reference whose callback drops it.
    static func table(for kernel: PyPtr, config: HelionConfig) -> HelionKernelTable? {
        if let table = tables[UInt(bitPattern: kernel)] { return table }
        guard let callback = kernelGoneCallback, let ref = PyWeakref_NewRef(kernel, callback) else { return nil }
        let table = HelionKernelTable(kernelRef: PyRef(owning: ref), capacity: config.capacity)
        tables[UInt(bitPattern: kernel)] = table
        return table
    }

    nonisolated(unsafe) static let kernelGoneMethod: UnsafeMutablePointer<PyMethodDef> = {
        let method = UnsafeMutablePointer<PyMethodDef>.allocate(capacity: 1)
        method.initialize(to: PyMethodDef(ml_name: strdup("helion_kernel_gone"),
                                          ml_meth: kernelGone,
                                          ml_flags: Int32(METH_O), ml_doc: nil))
        return method
    }()
    nonisolated(unsafe) static var kernelGoneCallback: PyPtr? = PyCFunction_NewEx(kernelGoneMethod, nil, nil)

    /// Releases the tables of kernels that went. Taken out of `released` first: releasing them can
    /// free other kernels, whose callbacks append to it.
    static func releaseGoneTables() {
        let gone = released
        released = []
        withExtendedLifetime(gone) {}
    }

    /// The weak reference's callback: the kernel is being freed, so its address may soon name another
    /// object; its table leaves the index now and is released on the next learn.
    static let kernelGone: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, ref in
        if let (key, table) = tables.first(where: { $0.value.kernelRef.object == ref }) {
            tables[key] = nil
            released.append(table)
        }
        return SL_NewRefNone()
    }
}

/// `_native.helion_forget(kernel)`: drops one kernel's table, or every table for None.
let helionForgetFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, kernel in
    guard let kernel else { return nil }
    if kernel == SL_None() {
        let all = HelionDispatch.tables
        HelionDispatch.tables = [:]
        withExtendedLifetime(all) {}
    } else {
        let table = HelionDispatch.tables.removeValue(forKey: UInt(bitPattern: kernel))
        withExtendedLifetime(table) {}
    }
    HelionDispatch.releaseGoneTables()
    return SL_NewRefNone()
}

/// `_native.helion_stats()` → `{"dispatched", "learned", "tables", "entries", "native_runs", "recorded",
/// "pool_reused", "pool_allocated", "pool_refusals": {reason: n}}`.
let helionStatsFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, _ in
    guard let result = PyDict_New() else { return nil }
    let entries = HelionDispatch.tables.values.reduce(0) { $0 + $1.entries.count }
    for (name, value) in [("dispatched", HelionDispatch.dispatched), ("learned", HelionDispatch.learned),
                          ("tables", HelionDispatch.tables.count), ("entries", entries),
                          ("native_runs", HelionNativeRun.nativeRuns), ("recorded", HelionNativeRun.recorded),
                          ("pool_reused", OutputPool.reused), ("pool_allocated", OutputPool.allocated)] {
        guard let number = newInteger(value) else { SL_DecRef(result); return nil }
        PyDict_SetItemString(result, name, number)
        SL_DecRef(number)
    }
    // Why the pool allocated instead of reusing, by reason.
    guard let refusals = PyDict_New() else { SL_DecRef(result); return nil }
    defer { SL_DecRef(refusals) }
    for (reason, count) in OutputPool.refusals.sorted(by: { $0.key < $1.key }) {
        guard let number = newInteger(count) else { SL_DecRef(result); return nil }
        PyDict_SetItemString(refusals, reason, number)
        SL_DecRef(number)
    }
    PyDict_SetItemString(result, "pool_refusals", refusals)
    return result
}

/// `_native.helion_configure(hand_back, refused, kernel_type, (int, float, bool, NoneType, str),
/// (torch.dtype, torch.device), const_expr_type, (tuple, list, dict), kernel_module_globals,
/// is_torch_function_mode_enabled, probe_tensor, capacity)`, or `helion_configure(None)` to turn
/// dispatch off (every call then goes to Helion).
let helionConfigureFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = { _, args, nargs in
    guard let args else { raise(SL_ExcTypeError(), "helion_configure takes arguments"); return nil }
    if nargs == 1, args[0] == SL_None() {
        HelionDispatch.config?.enabled = false
        return SL_NewRefNone()
    }
    guard nargs == 11, let scalars = args[3], let objects = args[4], let containers = args[6], let probe = args[9],
          SL_TupleCheck(scalars) != 0, PyTuple_Size(scalars) == 5, SL_TupleCheck(objects) != 0, PyTuple_Size(objects) == 2,
          SL_TupleCheck(containers) != 0, SL_DictCheck(args[7]!) != 0
    else {
        raise(SL_ExcTypeError(), "helion_configure takes 11 arguments (see its documentation)")
        return nil
    }
    guard HelionNames.make() else { return nil }
    let capacity = PyLong_AsLong(args[10]!)
    if PyErr_Occurred() != nil { return nil }
    guard capacity >= 1 else { raise(SL_ExcValueError(), "capacity must be at least 1"); return nil }
    HelionDispatch.optionalAttribute = HelionDispatch.resolveOptionalAttribute()
    if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "_PyObject_GetDictPtr") {
        // Sound: CPython declares it `PyObject **_PyObject_GetDictPtr(PyObject *)`.
        HelionDispatch.dictPointer = unsafeBitCast(symbol, to: HelionDispatch.DictPointer.self)
    }
    guard let lookup = HelionDispatch.optionalAttribute else {
        raise(SL_ExcRuntimeError(), "this Python has neither PyObject_GetOptionalAttr nor _PyObject_LookupAttr")
        return nil
    }
    var method: PyPtr?
    guard lookup(probe, HelionNames.stride, &method) == 1, let method else {
        if PyErr_Occurred() == nil { raise(SL_ExcTypeError(), "the probe tensor has no stride") }
        return nil
    }
    defer { SL_DecRef(method) }
    guard SL_CFunctionCheck(method) != 0, let strideFunction = PyCFunction_GetFunction(method) else {
        raise(SL_ExcTypeError(), "the probe tensor's stride is not a builtin method")
        return nil
    }
    func items(_ tuple: PyPtr) -> [PyPtr] { (0..<PyTuple_Size(tuple)).map { PyTuple_GetItem(tuple, $0)! } }
    HelionDispatch.config = HelionConfig(
        handBack: args[0]!, refused: args[1]!, kernelType: args[2]!, scalarTypes: items(scalars), objectTypes: items(objects),
        constExprType: args[5]!, containerTypes: items(containers), kernelGlobals: args[7]!, functionModeEnabled: args[8]!,
        strideFunction: unsafeBitCast(strideFunction, to: UnsafeRawPointer.self), capacity: capacity)
    return SL_NewRefNone()
}

/// The module functions above, for `Module.swift`'s method table.
enum HelionDispatchMethods {
    static let count = 17

    /// Writes `count` method definitions from `methods`.
    static func write(into methods: UnsafeMutablePointer<PyMethodDef>) {
        let fast = Int32(METH_FASTCALL)
        let definitions: [(String, PyCFunction, Int32)] = [
            ("helion_configure", unsafeBitCast(helionConfigureFunction, to: PyCFunction.self), fast),
            ("helion_dispatch", unsafeBitCast(helionDispatchFunction, to: PyCFunction.self), fast),
            ("helion_lookup", unsafeBitCast(helionLookupFunction, to: PyCFunction.self), fast),
            ("helion_learn", unsafeBitCast(helionLearnFunction, to: PyCFunction.self), fast),
            ("helion_refuse", unsafeBitCast(helionRefuseFunction, to: PyCFunction.self), fast),
            ("helion_forget", helionForgetFunction, Int32(METH_O)),
            ("helion_stats", helionStatsFunction, Int32(METH_NOARGS)),
            // The second stage (HelionNativeRun.swift) and the output pool (OutputPool.swift).
            ("helion_native_configure", helionNativeConfigureFunction, Int32(METH_O)),
            ("helion_pool_probe", helionPoolProbeFunction, Int32(METH_O)),
            ("helion_pool_layout", unsafeBitCast(helionPoolLayoutFunction, to: PyCFunction.self), fast),
            ("helion_pool_counts", helionPoolCountsFunction, Int32(METH_O)),
            ("helion_pool_configure", unsafeBitCast(helionPoolConfigureFunction, to: PyCFunction.self), fast),
            ("helion_pool_check", helionPoolCheckFunction, Int32(METH_O)),
            ("helion_pool_driver_capture", helionPoolDriverCaptureFunction, Int32(METH_O)),
            ("current_stream_capturing", currentStreamCapturingFunction, Int32(METH_NOARGS)),
            // Helion's `Kernel` called without the shim's Python frame (HelionCallSlot.swift).
            ("helion_call_slot_install", unsafeBitCast(helionCallSlotInstallFunction, to: PyCFunction.self), fast),
            ("helion_call_slot_uninstall", helionCallSlotUninstallFunction, Int32(METH_NOARGS)),
        ]
        for (index, (name, function, flags)) in definitions.enumerated() {
            methods[index] = PyMethodDef(ml_name: strdup(name), ml_meth: function, ml_flags: flags, ml_doc: nil)
        }
    }
}
