@preconcurrency import CPython

// Triton's check that a kernel's captured globals still hold the values it was compiled with:
// `if globals_dict.get(name, not_present) != val: raise RuntimeError(...)`, on every launch. `val` is
// a `copy.deepcopy` of the global, so for a `tl.constexpr` global (every Helion kernel has its block
// sizes as such) the two are different objects and Python's `!=` runs `constexpr.__ne__`, about a
// microsecond of Python per global. When the glue has checked that `constexpr`'s `__ne__`, `__bool__`,
// `__init__` and `_unwrap_if_constexpr` are the ones this mirrors, two exact constexprs holding plain
// scalars compare as that code does, `bool(a.value != b.value)`, in C.

enum CapturedGlobals {
    /// `triton.language.core.constexpr` once the glue validated it (`constexpr_compare_configure`).
    nonisolated(unsafe) static var constexprType: PyRef?
    nonisolated(unsafe) static var valueName: PyPtr?

    enum Comparison: Equatable {
        case equal
        case differs
        /// `!=` or its truth value raised (the error is cleared): Triton raises it itself.
        case raised
    }

    /// `current != recorded` as Python evaluates it in an `if` (no identity shortcut: `nan != nan`
    /// holds); `ranPython` is set when the comparison may have run Python code.
    static func compare(_ current: PyPtr, _ recorded: PyPtr, ranPython: inout Bool) -> Comparison {
        if let type = constexprType?.object, hasExactType(current, type), hasExactType(recorded, type),
           let left = plainValue(current), let right = plainValue(recorded) {
            return truth(PyObject_RichCompare(left, right, Py_NE))
        }
        if SL_IsPlainScalar(current) == 0 || SL_IsPlainScalar(recorded) == 0 { ranPython = true }
        return truth(PyObject_RichCompare(current, recorded, Py_NE))
    }

    /// A constexpr's `value` from its instance dict when it is a plain scalar (borrowed), else nil.
    private static func plainValue(_ object: PyPtr) -> PyPtr? {
        guard let name = valueName, let dict = PyObject_GenericGetDict(object, nil) else {
            PyErr_Clear()
            return nil
        }
        defer { SL_DecRef(dict) }
        // Borrowed from the dict, which the constexpr (held by the caller) keeps alive; nothing below
        // runs code that could change it.
        guard let value = PyDict_GetItemWithError(dict, name), SL_IsPlainScalar(value) != 0 else {
            PyErr_Clear()
            return nil
        }
        return value
    }

    private static func truth(_ result: PyPtr?) -> Comparison {
        guard let result else { PyErr_Clear(); return .raised }
        defer { SL_DecRef(result) }
        switch PyObject_IsTrue(result) {
        case 0: return .equal
        case 1: return .differs
        default: PyErr_Clear(); return .raised
        }
    }
}

/// `_native.constexpr_compare_configure(constexpr_type or None)`: the glue's validated constexpr
/// class, or None to compare every captured global through Python's `!=`.
let constexprCompareConfigureFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, type in
    guard let type else { return nil }
    if type == SL_None() {
        CapturedGlobals.constexprType = nil
        return SL_NewRefNone()
    }
    guard PyType_Check(type) != 0 else {
        raise(SL_ExcTypeError(), "constexpr_compare_configure(constexpr_type: type or None)")
        return nil
    }
    if CapturedGlobals.valueName == nil {
        guard let name = PyUnicode_InternFromString("value") else { return nil }
        CapturedGlobals.valueName = name
    }
    CapturedGlobals.constexprType = PyRef(borrowing: type)
    return SL_NewRefNone()
}

/// `_native.global_differs(current, recorded)` → `(differs, native)`: what the launch path decides for
/// one captured global (`differs` None when `!=` raised) and whether it decided without Python code.
/// For the glue's validation and the tests.
let globalDiffersFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = { _, args, nargs in
    guard let args, nargs == 2, let current = args[0], let recorded = args[1] else {
        raise(SL_ExcTypeError(), "global_differs(current, recorded)")
        return nil
    }
    var ranPython = false
    let comparison = CapturedGlobals.compare(current, recorded, ranPython: &ranPython)
    let differs: PyPtr
    switch comparison {
    case .equal: differs = SL_NewRefFalse()
    case .differs: differs = SL_NewRefTrue()
    case .raised: differs = SL_NewRefNone()
    }
    guard let result = PyTuple_New(2) else { SL_DecRef(differs); return nil }
    PyTuple_SetItem(result, 0, differs)
    PyTuple_SetItem(result, 1, ranPython ? SL_NewRefFalse() : SL_NewRefTrue())
    return result
}
