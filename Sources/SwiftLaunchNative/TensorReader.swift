@preconcurrency import CPython
import SwiftLaunchCore

/// torch's own C accessors of `torch._C.TensorBase`, called directly instead of through attribute
/// lookup. The glue hands them over only after checking that `torch.Tensor` and `Parameter` resolve
/// `dtype`, `data_ptr` and `get_device` to exactly these objects, and only tensors of those exact
/// types are read through them.
struct TensorAccess {
    /// The `dtype` getset descriptor and its type's `tp_descr_get` (it is a data descriptor, so no
    /// instance attribute can shadow it).
    let dtype: PyPtr
    let dtypeGet: descrgetfunc
    let dataPtr: BuiltinCall
    let getDevice: BuiltinCall

    /// `probe` is a tensor to bind the method descriptors to, to find their C functions.
    init?(dtype: PyPtr, dataPtr: PyPtr, getDevice: PyPtr, probe: PyPtr) {
        guard let get = PyType_GetSlot(SL_Type(dtype), Py_tp_descr_get) else { return nil }
        // Sound: `Py_tp_descr_get` holds a `descrgetfunc`, as the slot's documentation says.
        dtypeGet = unsafeBitCast(get, to: descrgetfunc.self)
        self.dtype = dtype
        self.dataPtr = BuiltinCall(method: dataPtr, probe: probe)
        self.getDevice = BuiltinCall(method: getDevice, probe: probe)
    }
}

extension ArgumentReading {
    /// dtype, address and device of an exact `torch.Tensor` / `Parameter`.
    static func tensorValue(_ object: PyPtr, _ runtime: Runtime) -> ArgumentValue? {
        guard let access = runtime.tensorAccess else { return nil }
        guard let dtype = access.dtypeGet(access.dtype, object, UnsafeMutableRawPointer(SL_Type(object)).assumingMemoryBound(to: PyObject.self)) else {
            PyErr_Clear()
            return nil
        }
        let index = runtime.dtypeIndex(dtype)
        SL_DecRef(dtype)
        guard let index else { return nil }
        guard let pointer = access.dataPtr(object) else { PyErr_Clear(); return nil }
        // `unsigned long` is 64 bits on Linux, and its conversion reads the digits directly (the
        // `long long` one goes through a byte array on 3.11).
        let address = UInt64(PyLong_AsUnsignedLong(pointer))
        SL_DecRef(pointer)
        if address == UInt64.max && PyErr_Occurred() != nil { PyErr_Clear(); return nil }
        guard let deviceObject = access.getDevice(object) else { PyErr_Clear(); return nil }
        let device = PyLong_AsLong(deviceObject)
        SL_DecRef(deviceObject)
        guard let device = Int32(exactly: device) else { PyErr_Clear(); return nil }
        return .tensor(dtype: index, address: address, device: device)
    }
}
