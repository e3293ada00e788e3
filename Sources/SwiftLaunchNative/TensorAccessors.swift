@preconcurrency import CPython
import SwiftLaunchCore

/// torch's own C accessors of `torch._C.TensorBase`, called directly instead of through attribute
/// lookup: the reader used when the native one is off (`SWIFTLAUNCH_TENSOR_READER=python`, a torch it
/// could not validate). The glue hands them over only after checking that `torch.Tensor` and
/// `Parameter` resolve `dtype`, `data_ptr` and `get_device` to exactly these objects, and only tensors
/// of those exact types are read through them.
struct TensorAccessors {
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

    /// dtype, address and device (`get_device()`: -1 for host memory) of an exact `torch.Tensor` /
    /// `Parameter`; nil, with no Python error set, when torch cannot tell or the dtype has no
    /// Triton name.
    func read(_ object: PyPtr, _ runtime: Runtime) -> ArgumentValue? {
        let type = UnsafeMutableRawPointer(SL_Type(object)).assumingMemoryBound(to: PyObject.self)
        guard let dtype = dtypeGet(self.dtype, object, type) else {
            PyErr_Clear()
            return nil
        }
        let index = runtime.dtypeIndex(dtype)
        SL_DecRef(dtype)
        guard let index else { return nil }
        guard let pointer = dataPtr(object) else { PyErr_Clear(); return nil }
        // `unsigned long` is 64 bits on Linux, and its conversion reads the digits directly (the
        // `long long` one goes through a byte array on 3.11).
        let address = UInt64(PyLong_AsUnsignedLong(pointer))
        SL_DecRef(pointer)
        if address == UInt64.max && PyErr_Occurred() != nil { PyErr_Clear(); return nil }
        guard let deviceObject = getDevice(object) else { PyErr_Clear(); return nil }
        let device = PyLong_AsLong(deviceObject)
        SL_DecRef(deviceObject)
        guard let device = Int32(exactly: device) else { PyErr_Clear(); return nil }
        return .tensor(dtype: index, address: address, device: device)
    }
}
