@preconcurrency import CPython


/// A CPython object pointer. Every function in this target runs with the GIL held.
typealias PyPtr = UnsafeMutablePointer<PyObject>

/// A strong reference owned by a Swift value: released when the owner goes away. Only ever created
/// and destroyed with the GIL held (every entry point of this module holds it).
final class PyRef {
    let object: PyPtr

    /// Takes over a new reference.
    init(owning object: PyPtr) {
        self.object = object
    }

    /// Adds a reference of our own to a borrowed one.
    init(borrowing object: PyPtr) {
        SL_IncRef(object)
        self.object = object
    }

    deinit {
        SL_DecRef(object)
    }
}

/// Interned attribute names, made once at module init.
enum Names {
    nonisolated(unsafe) static var dataPtr: PyPtr!
    nonisolated(unsafe) static var dtype: PyPtr!
    nonisolated(unsafe) static var calls: PyPtr!
    nonisolated(unsafe) static var preRunHooks: PyPtr!
    nonisolated(unsafe) static var usedGlobalVals: PyPtr!
    nonisolated(unsafe) static var debug: PyPtr!
    nonisolated(unsafe) static var launchEnterHook: PyPtr!
    nonisolated(unsafe) static var launchExitHook: PyPtr!
    nonisolated(unsafe) static var stagesHook: PyPtr!
    nonisolated(unsafe) static var instrumentationMode: PyPtr!
    nonisolated(unsafe) static var get: PyPtr!
    nonisolated(unsafe) static var swiftlaunchFast: PyPtr!
    nonisolated(unsafe) static var swiftlaunchKernel: PyPtr!
    nonisolated(unsafe) static var fpsanHomomorphicCasts: PyPtr!
    nonisolated(unsafe) static var hasNames: PyPtr!

    static func make() -> Bool {
        func intern(_ text: String) -> PyPtr? { PyUnicode_InternFromString(text) }
        guard let a = intern("data_ptr"), let b = intern("dtype"), let c = intern("calls"),
              let d = intern("pre_run_hooks"), let e = intern("used_global_vals"), let f = intern("debug"),
              let g = intern("launch_enter_hook"), let h = intern("launch_exit_hook"),
              let i = intern("add_stages_inspection_hook"), let j = intern("instrumentation_mode"),
              let k = intern("get"), let l = intern("_swiftlaunch_fast"), let m = intern("_swiftlaunch_kernel"),
              let n = intern("fpsan_homomorphic_casts"), let o = intern("has_names")
        else { return false }
        swiftlaunchFast = l; swiftlaunchKernel = m; fpsanHomomorphicCasts = n; hasNames = o
        dataPtr = a; dtype = b; calls = c; preRunHooks = d; usedGlobalVals = e; debug = f
        launchEnterHook = g; launchExitHook = h; stagesHook = i; instrumentationMode = j; get = k
        return true
    }
}

/// `PyObject_Vectorcall` is exported from 3.11 on; 3.10 gets the tuple path.
nonisolated(unsafe) private var vectorcallFunction: SLVectorcallFunc = { callable, args, nargsf, kwnames in
    SL_CallViaTuple(callable, args, nargsf, kwnames)
}

/// The running interpreter's `Py_Version` (exported from 3.11; 3.10 does not have it).
nonisolated(unsafe) var interpreterVersion: UInt32 = 0x030A_0000

func resolveVectorcall() {
    if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "Py_Version") {
        interpreterVersion = symbol.load(as: UInt32.self)
    }
    if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "PyObject_Vectorcall") {
        // Sound: CPython declares PyObject_Vectorcall with exactly this C signature.
        vectorcallFunction = unsafeBitCast(symbol, to: SLVectorcallFunc.self)
    }
}

@inline(__always)
func call(_ callable: PyPtr, _ args: UnsafePointer<PyPtr?>, count: Int, kwnames: PyPtr? = nil) -> PyPtr? {
    vectorcallFunction(callable, args, count, kwnames)
}

/// Room for up to six arguments after one free slot, on the stack.
private typealias ArgumentSlots = (PyPtr?, PyPtr?, PyPtr?, PyPtr?, PyPtr?, PyPtr?, PyPtr?)

@inline(__always)
private func call(_ callable: PyPtr, slots: inout ArgumentSlots, count: Int) -> PyPtr? {
    withUnsafeMutableBytes(of: &slots) { raw in
        // Sound: a homogeneous tuple is laid out as a C array. Slot 0 stays free, so the
        // arguments-offset flag lets a bound method put `self` there instead of copying.
        let base = raw.baseAddress!.assumingMemoryBound(to: PyPtr?.self)
        return call(callable, base + 1, count: count | SL_VectorcallArgumentsOffset())
    }
}

@inline(__always)
func call(_ callable: PyPtr) -> PyPtr? {
    var slots: ArgumentSlots = (nil, nil, nil, nil, nil, nil, nil)
    return call(callable, slots: &slots, count: 0)
}

@inline(__always)
func call(_ callable: PyPtr, _ a: PyPtr) -> PyPtr? {
    var slots: ArgumentSlots = (nil, a, nil, nil, nil, nil, nil)
    return call(callable, slots: &slots, count: 1)
}

func call(_ callable: PyPtr, _ a: PyPtr, _ b: PyPtr, _ c: PyPtr) -> PyPtr? {
    var slots: ArgumentSlots = (nil, a, b, c, nil, nil, nil)
    return call(callable, slots: &slots, count: 3)
}

func call(_ callable: PyPtr, _ a: PyPtr, _ b: PyPtr, _ c: PyPtr, _ d: PyPtr, _ e: PyPtr, _ f: PyPtr) -> PyPtr? {
    var slots: ArgumentSlots = (nil, a, b, c, d, e, f)
    return call(callable, slots: &slots, count: 6)
}

@inline(__always)
func callMethodNoArgs(_ object: PyPtr, _ name: PyPtr) -> PyPtr? {
    var receiver: PyPtr? = object
    return withUnsafePointer(to: &receiver) { pointer in
        PyObject_VectorcallMethod(name, pointer, 1 | SL_VectorcallArgumentsOffset(), nil)
    }
}

func raise(_ type: PyPtr, _ message: String) {
    PyErr_SetString(type, message)
}

func pyString(_ text: String) -> PyPtr? {
    PyUnicode_FromString(text)
}

func swiftString(_ object: PyPtr) -> String? {
    guard let utf8 = PyUnicode_AsUTF8String(object) else { return nil }
    defer { SL_DecRef(utf8) }
    guard let bytes = PyBytes_AsString(utf8) else { return nil }
    return String(cString: bytes)
}

/// Reads a Python int as Int128 when it lies in [-2^63, 2^64), the range Triton specializes;
/// nil (with no error set) for any other int.
func readInteger(_ object: PyPtr) -> Int128? {
    var overflow: Int32 = 0
    let value = PyLong_AsLongLongAndOverflow(object, &overflow)
    if overflow == 0 {
        if value == -1 && PyErr_Occurred() != nil { PyErr_Clear(); return nil }
        return Int128(value)
    }
    guard overflow > 0 else { return nil }
    let unsigned = PyLong_AsUnsignedLongLong(object)
    if unsigned == UInt64.max && PyErr_Occurred() != nil { PyErr_Clear(); return nil }
    return Int128(unsigned)
}

/// Whether `object`'s type is exactly `type` (subclasses excluded).
@inline(__always)
func hasExactType(_ object: PyPtr, _ type: PyPtr) -> Bool {
    UnsafeMutableRawPointer(SL_Type(object)) == UnsafeMutableRawPointer(type)
}

func newInteger(_ value: Int) -> PyPtr? { PyLong_FromSsize_t(value) }

@inline(__always)
func isTrue(_ object: PyPtr) -> Bool? {
    let result = PyObject_IsTrue(object)
    if result < 0 { return nil }
    return result == 1
}
