@preconcurrency import CPython
import SwiftLaunchCore

/// One cached compiled kernel: the `CompiledKernel` (kept alive: its CUDA function handle is only
/// valid while it lives) and the launch values read off it.
final class CacheEntry {
    let compiled: PyPtr
    let launch: CompiledLaunch

    /// Adds a reference of its own to `compiled`.
    init(compiled: PyPtr, launch: CompiledLaunch) {
        SL_IncRef(compiled)
        self.compiled = compiled
        self.launch = launch
    }

    deinit { SL_DecRef(compiled) }
}

/// The native side of one `JITFunction`: what its parameters are, and its compiled kernels by
/// native dispatch key. Touched only with the GIL held, and no Python code runs while its cache
/// is read or written, so many threads may launch through it.
final class KernelState: CollectableState {
    let function: PyPtr
    /// `function.__dict__`, where Triton keeps the per-kernel guards (`pre_run_hooks`, `debug`,
    /// `used_global_vals`).
    let functionDict: PyPtr
    /// `miss(kernel, token, specialization, grid, args, kwargs)`: runs the call through Triton (or
    /// Helion) and, when `token` is not None, may cache the result under it with `kernel.insert`.
    let missHandler: PyPtr
    /// Per parameter: name, traits and default (nil: none). Fixed-size buffers the hot path reads
    /// without reference counting; the objects in them are owned by this state.
    let names: UnsafeMutableBufferPointer<PyPtr>
    let traits: UnsafeMutableBufferPointer<ParameterTraits>
    let defaults: UnsafeMutableBufferPointer<PyPtr?>
    var cache = LaunchCache<CacheEntry>()
    /// Keyword option names seen so far (owned references); a key names an option by its index.
    let optionNames = UnsafeMutableBufferPointer<PyPtr>.allocate(capacity: maxOptionNames)
    var optionNameCount = 0
    /// Options this launcher adds when the caller leaves them out (Helion's `launch_cooperative_grid`).
    let implicitOptions: UnsafeMutableBufferPointer<(name: PyPtr, value: PyPtr)>
    /// The most positional arguments a call binds natively (`TritonRules.positionalLimit`): more go
    /// to Triton, whose binder raises TypeError.
    let positionalLimit: Int

    /// Borrows every object it is given and adds references of its own.
    init(function: PyPtr, functionDict: PyPtr, missHandler: PyPtr, names: [PyPtr], traits: [ParameterTraits],
         defaults: [PyPtr?], implicitOptions: [(name: PyPtr, value: PyPtr)], positionalLimit: Int) {
        precondition(names.count == traits.count && names.count == defaults.count, "one entry per parameter")
        for object in [function, functionDict, missHandler] + names + defaults.compactMap({ $0 })
            + implicitOptions.flatMap({ [$0.name, $0.value] }) {
            SL_IncRef(object)
        }
        self.function = function
        self.functionDict = functionDict
        self.missHandler = missHandler
        self.positionalLimit = positionalLimit
        self.names = .allocate(capacity: names.count)
        _ = self.names.initialize(from: names)
        self.traits = .allocate(capacity: traits.count)
        _ = self.traits.initialize(from: traits)
        self.defaults = .allocate(capacity: defaults.count)
        _ = self.defaults.initialize(from: defaults)
        self.implicitOptions = .allocate(capacity: implicitOptions.count)
        _ = self.implicitOptions.initialize(from: implicitOptions)
    }

    deinit {
        for object in [function, functionDict, missHandler] + Array(names) + defaults.compactMap({ $0 })
            + implicitOptions.flatMap({ [$0.name, $0.value] }) + optionNames[0..<optionNameCount] {
            SL_DecRef(object)
        }
        if let planNames { SL_DecRef(planNames) }
        planSlots.deallocate()
        names.deallocate()
        optionNames.deallocate()
        implicitOptions.deallocate()
        traits.deallocate()
        defaults.deallocate()
    }

    /// Calls `visit` on every Python object this state holds a reference to, stopping at the first
    /// nonzero result and returning it: the kernel object's `tp_traverse`, so that the collector can
    /// free cycles through it (a `JITFunction` keeps its wrapper in its `__dict__`; a cached
    /// `CompiledKernel` may refer back to the kernel).
    func traverse(_ visit: (PyPtr) -> Int32) -> Int32 {
        var result: Int32 = 0
        func reported(_ object: PyPtr?) -> Bool {
            guard let object else { return true }
            result = visit(object)
            return result == 0
        }
        guard reported(function), reported(functionDict), reported(missHandler) else { return result }
        for name in names where !reported(name) { return result }
        for value in defaults where !reported(value) { return result }
        for option in implicitOptions where !(reported(option.name) && reported(option.value)) { return result }
        for index in 0..<optionNameCount where !reported(optionNames[index]) { return result }
        _ = cache.allSatisfy { reported($0.compiled) }
        return result
    }

    func optionID(_ name: PyPtr) -> UInt32? {
        for index in 0..<optionNameCount where optionNames[index] == name { return UInt32(index) }
        for index in 0..<optionNameCount {
            let equal = PyObject_RichCompareBool(optionNames[index], name, Py_EQ)
            if equal < 0 { PyErr_Clear(); return nil }
            if equal == 1 { return UInt32(index) }
        }
        guard optionNameCount < maxOptionNames else { return nil }
        SL_IncRef(name)
        optionNames[optionNameCount] = name
        optionNameCount += 1
        return UInt32(optionNameCount - 1)
    }

    /// How the last keyword-name tuple binds, one slot per name: a parameter index (>= 0) or an
    /// option id (-1 - id). A call site's tuple is a constant of its code object, so in the steady
    /// state binding keywords costs one identity compare instead of string compares per name.
    private var planNames: PyPtr?
    private let planSlots = UnsafeMutableBufferPointer<Int32>.allocate(capacity: maxKeywordsPerCall)

    @inline(__always)
    func keywordPlan(for names: PyPtr) -> UnsafeBufferPointer<Int32>? {
        guard names == planNames else { return nil }
        return UnsafeBufferPointer(rebasing: planSlots[0..<PyTuple_Size(names)])
    }

    /// Keeps `slots` (at most `maxKeywordsPerCall`) as the plan of `names`.
    func rememberPlan(_ slots: [Int32], for names: PyPtr) -> UnsafeBufferPointer<Int32> {
        SL_IncRef(names)
        if let planNames { SL_DecRef(planNames) }
        planNames = names
        _ = planSlots.initialize(from: slots)
        return UnsafeBufferPointer(rebasing: planSlots[0..<slots.count])
    }

    func parameterIndex(_ name: PyPtr) -> Int? {
        for (index, known) in names.enumerated() where known == name { return index }
        for (index, known) in names.enumerated() {
            let equal = PyObject_RichCompareBool(known, name, Py_EQ)
            if equal < 0 { PyErr_Clear(); return nil }
            if equal == 1 { return index }
        }
        return nil
    }
}

/// The most parameters a kernel may have on the fast path (bound-argument storage is on the stack).
let maxParameters = 256
/// The most distinct keyword option names one kernel keys on.
let maxOptionNames = 256
/// The most keyword arguments, and the most options (given and implicit), one call binds natively.
let maxKeywordsPerCall = 64
let maxOptionsPerCall = 32
/// The most options a launcher may add on its own; a call's option storage holds these after the
/// caller's (at most 24 of those, of 32 slots).
let maxImplicitOptions = 8
