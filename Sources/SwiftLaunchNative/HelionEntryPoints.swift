@preconcurrency import CPython
import SwiftLaunchCore

/// Helion's launcher contract: `launcher(triton_kernel, grid, *args, num_warps=, num_stages=, **extras)`.
final class LauncherState: CollectableState {
    /// `factory(triton_kernel)` → a `_native.Kernel` for it, or None when it cannot be accelerated.
    let factory: PyRef
    /// Helion's own launcher, for calls whose extras swiftlaunch does not handle.
    let fallback: PyRef
    var kernels: [(function: PyRef, kernel: PyRef?)] = []

    init(factory: PyRef, fallback: PyRef) {
        self.factory = factory
        self.fallback = fallback
    }

    /// The last kernel found, by function identity: a Helion wrapper launches the same kernel call
    /// after call, so the steady state is one compare (the objects are owned by `kernels`).
    private var lastFunction: PyPtr?
    private var lastKernel: PyPtr?
    /// The last keyword-name tuple seen and whether it carries extras only Helion handles. A call
    /// site's tuple is a constant of its code object, so this too is one compare per call.
    private var lastKeywordNames: PyRef?
    private var lastKeywordNamesHaveExtras = false

    /// The kernel object for a JIT function (borrowed), created on first sight.
    @inline(__always)
    func kernel(for function: PyPtr) -> PyPtr?? {
        if function == lastFunction { return .some(lastKernel) }
        return findKernel(function)
    }

    private func findKernel(_ function: PyPtr) -> PyPtr?? {
        let found: PyPtr?
        if let entry = kernels.first(where: { $0.function.object == function }) {
            found = entry.kernel?.object
        } else {
            guard let made = call(factory.object, function) else { return nil }
            if made == SL_None() {
                SL_DecRef(made)
                kernels.append((PyRef(borrowing: function), nil))
                found = nil
            } else {
                // The launch reads the object's memory as a kernel's: anything else must not get that far.
                guard Objects.isKernel(made) else {
                    SL_DecRef(made)
                    raise(SL_ExcTypeError(), "the launcher's factory must return a swiftlaunch._native.Kernel or None")
                    return nil
                }
                let kernel = PyRef(owning: made)
                kernels.append((PyRef(borrowing: function), kernel))
                found = kernel.object
            }
        }
        lastFunction = function
        lastKernel = found
        return .some(found)
    }

    /// Helion's distributed and occupancy extras (`_remote_copy_*`, `_persistent_state_*`,
    /// `_minimum_resident_programs`, `ptx_options`) change what is launched: Helion does those.
    @inline(__always)
    func hasHelionExtras(_ keywordNames: PyPtr) -> Bool {
        if keywordNames == lastKeywordNames?.object { return lastKeywordNamesHaveExtras }
        var extras = false
        for index in 0..<PyTuple_Size(keywordNames) {
            let name = PyTuple_GetItem(keywordNames, index)!
            // Keyword names are str: compared in place, nothing converted or allocated.
            if PyUnicode_ReadChar(name, 0) == UInt32(UInt8(ascii: "_"))
                || PyUnicode_CompareWithASCIIString(name, "ptx_options") == 0 {
                extras = true
            }
            PyErr_Clear()  // an empty name has no first character
        }
        lastKeywordNames = PyRef(borrowing: keywordNames)
        lastKeywordNamesHaveExtras = extras
        return extras
    }

    /// Every Python object the launcher holds, for the cycle collector; stops at the first nonzero result.
    func traverse(_ visit: (PyPtr) -> Int32) -> Int32 {
        for object in [factory.object, fallback.object] {
            let result = visit(object)
            if result != 0 { return result }
        }
        for entry in kernels {
            var result = visit(entry.function.object)
            if result == 0, let kernel = entry.kernel { result = visit(kernel.object) }
            if result != 0 { return result }
        }
        return 0
    }
}

// MARK: - Launcher (Helion)

/// `Launcher(factory, fallback)`.
let launcherNew: @convention(c) (OpaquePointer?, PyPtr?, PyPtr?) -> PyPtr? = {
    type, args, kwargs in
    guard let type, let args, PyTuple_Size(args) == 2, kwargs.map({ PyDict_Size($0) == 0 }) ?? true,
          let factory = PyTuple_GetItem(args, 0),
          let fallback = PyTuple_GetItem(args, 1)
    else {
        raise(SL_ExcTypeError(), "Launcher(factory, fallback)")
        return nil
    }
    let alloc = unsafeBitCast(PyType_GetSlot(type, Py_tp_alloc), to: allocfunc.self)
    // The collector tracks the object from here on; it sees no state until it is set below.
    guard let object = alloc(type, 0) else { return nil }
    let layout = UnsafeMutableRawPointer(object).assumingMemoryBound(to: LauncherLayout.self)
    let state = LauncherState(factory: PyRef(borrowing: factory), fallback: PyRef(borrowing: fallback))
    layout.pointee.state = Unmanaged.passRetained(state).toOpaque()
    layout.pointee.vectorcall = launcherVectorcall
    return object
}

let launcherDealloc: @convention(c) (PyPtr?) -> Void = { object in
    guard let object else { return }
    deallocObject(object, state: launcherStateSlot(object), LauncherState.self)
}

let launcherTraverse: @convention(c) (PyPtr?, visitproc?, UnsafeMutableRawPointer?) -> Int32 = {
    object, visit, argument in
    guard let object else { return 0 }
    return traverseObject(object, state: launcherStateSlot(object), LauncherState.self, visit, argument)
}

/// Drops the factory, the fallback and the kernels table; later calls raise.
let launcherClear: @convention(c) (PyPtr?) -> Int32 = { object in
    guard let object else { return 0 }
    return clearObject(state: launcherStateSlot(object), LauncherState.self)
}

let launcherVectorcall: SLVectorcallFunc = { callable, args, nargsf, kwnames in
    guard let state = Objects.launcherState(callable!) else { return nil }
    let positional = Int(SL_VectorcallNArgs(nargsf))
    guard let args, positional >= 2 else {
        return withEmptyArgs(args) { call(state.fallback.object, $0, count: positional, kwnames: kwnames) }
    }
    if let kwnames, state.hasHelionExtras(kwnames) {
        Stats.fallback("helion launcher extras")
        return call(state.fallback.object, args, count: positional, kwnames: kwnames)
    }
    guard let found = state.kernel(for: args[0]!) else { return nil }
    guard let kernel = found else {
        Stats.fallback("not a triton.jit kernel")
        return call(state.fallback.object, args, count: positional, kwnames: kwnames)
    }
    guard let kernelState = Objects.kernelState(kernel) else { return nil }
    return LaunchCall(state: kernelState, kernelObject: kernel, grid: args[1]!, args: args + 2,
                      positionalCount: positional - 2, kwnames: kwnames).run()
}

let launcherCall: @convention(c) (PyPtr?, PyPtr?, PyPtr?) -> PyPtr? = { callable, args, kwargs in
    callThroughVectorcall(callable!, args!, kwargs, launcherVectorcall)
}
