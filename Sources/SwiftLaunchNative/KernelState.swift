@preconcurrency import CPython
import SwiftLaunchCore

/// One cached compiled kernel: the `CompiledKernel` (kept alive: its CUDA function handle is only
/// valid while it lives) and the launch values read off it.
final class CacheEntry {
    let compiled: PyRef
    let launch: CompiledLaunch

    init(compiled: PyRef, launch: CompiledLaunch) {
        self.compiled = compiled
        self.launch = launch
    }
}

/// The native side of one `JITFunction`: what its parameters are, and its compiled kernels by
/// native dispatch key. Touched only with the GIL held, and no Python code runs while its cache
/// is read or written, so many threads may launch through it.
final class KernelState {
    let function: PyRef
    /// `miss(kernel, token, specialization, grid, args, kwargs)`: runs the call through Triton (or
    /// Helion) and, when `token` is not None, may cache the result under it with `kernel.insert`.
    let missHandler: PyRef
    let names: [PyRef]
    let traits: [ParameterTraits]
    let defaults: [PyRef?]
    var cache = LaunchCache<CacheEntry>()
    var optionNames: [PyRef] = []
    /// Options this launcher adds when the caller leaves them out (Helion's `launch_cooperative_grid`).
    let implicitOptions: [(name: PyRef, value: PyRef)]

    init(function: PyRef, missHandler: PyRef, names: [PyRef], traits: [ParameterTraits], defaults: [PyRef?],
         implicitOptions: [(name: PyRef, value: PyRef)]) {
        self.function = function
        self.missHandler = missHandler
        self.names = names
        self.traits = traits
        self.defaults = defaults
        self.implicitOptions = implicitOptions
    }

    func optionID(_ name: PyPtr) -> UInt32? {
        for (index, known) in optionNames.enumerated() where known.object == name { return UInt32(index) }
        for (index, known) in optionNames.enumerated() {
            let equal = PyObject_RichCompareBool(known.object, name, Py_EQ)
            if equal < 0 { PyErr_Clear(); return nil }
            if equal == 1 { return UInt32(index) }
        }
        guard optionNames.count < 256 else { return nil }
        optionNames.append(PyRef(borrowing: name))
        return UInt32(optionNames.count - 1)
    }

    func parameterIndex(_ name: PyPtr) -> Int? {
        for (index, known) in names.enumerated() where known.object == name { return index }
        for (index, known) in names.enumerated() {
            let equal = PyObject_RichCompareBool(known.object, name, Py_EQ)
            if equal < 0 { PyErr_Clear(); return nil }
            if equal == 1 { return index }
        }
        return nil
    }
}

/// The most parameters a kernel may have on the fast path (bound-argument storage is on the stack).
let maxParameters = 256
