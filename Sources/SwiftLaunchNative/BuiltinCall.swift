@preconcurrency import CPython

/// A builtin called through its C function, as CPython's own dispatch calls it, skipping the generic
/// call path: a `METH_NOARGS` method as `(object, NULL)`, a `METH_O` function as `(module, argument)`.
/// When the builtin is not of the expected kind, `callable` is called through vectorcall instead.
struct BuiltinCall {
    let callable: PyPtr
    let function: PyCFunction?
    /// `METH_NOARGS` methods take the call's object as `self`; `METH_O` functions their module.
    let objectIsSelf: Bool
    let boundSelf: PyPtr?

    /// A `METH_NOARGS` method descriptor; `probe` (an object of its type) binds it to find its C function.
    /// Only a real method descriptor is called directly: binding one checks the probe's type, and the
    /// bound method's `self` is then the probe, so its C function takes objects of the probe's type.
    /// Any other object (one whose `__get__` returns some unrelated builtin, say) is called normally.
    init(method descriptor: PyPtr, probe: PyPtr) {
        var bound: PyPtr?
        if hasExactType(descriptor, SL_MethodDescriptorType()), let get = PyType_GetSlot(SL_Type(descriptor), Py_tp_descr_get) {
            // Sound: `Py_tp_descr_get` holds a `descrgetfunc`.
            bound = unsafeBitCast(get, to: descrgetfunc.self)(descriptor, probe, nil)
        }
        PyErr_Clear()
        if let made = bound, SL_CFunctionCheck(made) == 0 || PyCFunction_GetSelf(made) != probe {
            SL_DecRef(made)
            bound = nil
        }
        self.init(callable: descriptor, builtin: bound, flags: METH_NOARGS)
        if let bound { SL_DecRef(bound) }
    }

    /// A `METH_O` module function (`torch._C._cuda_getCurrentRawStream`).
    init(function: PyPtr) {
        self.init(callable: function, builtin: function, flags: METH_O)
    }

    private init(callable: PyPtr, builtin: PyPtr?, flags: Int32) {
        self.callable = callable
        objectIsSelf = flags == METH_NOARGS
        if let builtin, SL_CFunctionCheck(builtin) != 0, PyCFunction_GetFlags(builtin) == flags {
            function = PyCFunction_GetFunction(builtin)
            // Borrowed: a module function's module lives as long as the function; a bound method's
            // `self` (the probe) is never used, the call's object takes its place.
            boundSelf = objectIsSelf ? nil : PyCFunction_GetSelf(builtin)
        } else {
            function = nil
            boundSelf = nil
        }
    }

    /// Sound for methods only on objects of the type that defines them (the caller checks the exact
    /// type): that is all the descriptor checks before making the same call.
    @inline(__always)
    func callAsFunction(_ argument: PyPtr) -> PyPtr? {
        guard let function else { return call(callable, argument) }
        return objectIsSelf ? function(argument, nil) : function(boundSelf, argument)
    }
}
