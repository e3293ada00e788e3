@preconcurrency import CPython
import SwiftLaunchCore

/// One call through a `KernelState`: bind, guard, read, key, then launch natively or hand the call
/// to the miss handler (Triton's own path).
struct LaunchCall {
    /// Unretained: the kernel object (kept alive by the caller's arguments or the bound launch for the
    /// whole call) owns its state, and configured runtimes are never released. Skipping the
    /// reference counting saves atomic operations on every call.
    unowned(unsafe) let state: KernelState
    let kernelObject: PyPtr
    let grid: PyPtr
    let args: UnsafePointer<PyPtr?>
    let positionalCount: Int
    let kwnames: PyPtr?
    /// Set for `Kernel.key`: compute the key for this device and return it as bytes (or None where
    /// the call would go to Triton) instead of launching.
    var probeDevice: Int32? = nil
    unowned(unsafe) let runtime = Runtime.shared

    var keywordCount: Int { kwnames.map { PyTuple_Size($0) } ?? 0 }

    func run() -> PyPtr? {
        if probeDevice == nil, let reason = guardFailure() { return fallback(reason.description) }
        let count = state.names.count
        guard count <= maxParameters else { return fallback("too many parameters") }
        guard positionalCount <= state.positionalLimit else { return fallback("argument binding") }
        let keywords = keywordCount
        guard keywords <= maxKeywordsPerCall else { return fallback("option not handled") }
        return withUnsafeTemporaryAllocation(of: PyPtr?.self, capacity: count) { bound -> PyPtr? in
            // Sound: every slot is written below before any is read; the pointers are borrowed from
            // `args`, the kernel's defaults or its parameter names, all alive for this call.
            for index in 0..<count { bound[index] = index < positionalCount ? args[index] : nil }
            return withUnsafeTemporaryAllocation(of: (UInt32, PyPtr).self, capacity: maxOptionsPerCall) {
                options -> PyPtr? in
                var optionCount = 0
                if let kwnames, keywords > 0 {
                    let plan: UnsafeBufferPointer<Int32>
                    if let known = state.keywordPlan(for: kwnames) {
                        plan = known
                    } else {
                        switch planKeywords(kwnames) {
                        case let .plan(made): plan = made
                        case let .fallback(reason): return fallback(reason)
                        }
                    }
                    for index in 0..<keywords {
                        let slot = Int(plan[index])
                        let value = args[positionalCount + index]!
                        if slot >= 0 {
                            guard bound[slot] == nil else { return fallback("argument binding") }
                            bound[slot] = value
                        } else {
                            options[optionCount] = (UInt32(-1 - slot), value)
                            optionCount += 1
                        }
                    }
                }
                let defaults = state.defaults
                for index in 0..<count where bound[index] == nil {
                    guard let fallbackValue = defaults[index] else { return fallback("argument binding") }
                    bound[index] = fallbackValue
                }
                for implicit in state.implicitOptions {
                    guard let id = state.optionID(implicit.name) else { return fallback("option not handled") }
                    if !(0..<optionCount).contains(where: { options[$0].0 == id }) {
                        guard optionCount < maxOptionsPerCall else { return fallback("option not handled") }
                        options[optionCount] = (id, implicit.value)
                        optionCount += 1
                    }
                }
                return withBoundValues(UnsafeBufferPointer(rebasing: bound[0..<count]),
                                       options: UnsafeBufferPointer(rebasing: options[0..<optionCount]))
            }
        }
    }

    private enum KeywordPlan {
        case plan(UnsafeBufferPointer<Int32>)
        case fallback(String)
    }

    /// Binds each keyword name to a parameter or an option id, and keeps the result for the next
    /// call with the same names. Room is left for the implicit options, so a call never binds more
    /// options than the call's option buffer holds.
    private func planKeywords(_ kwnames: PyPtr) -> KeywordPlan {
        var slots: [Int32] = []
        var optionCount = 0
        for index in 0..<PyTuple_Size(kwnames) {
            let name = PyTuple_GetItem(kwnames, index)!
            if let parameter = state.parameterIndex(name) {
                slots.append(Int32(parameter))
                continue
            }
            if PyObject_RichCompareBool(name, Names.debug, Py_EQ) == 1 { return .fallback("debug") }
            PyErr_Clear()
            optionCount += 1
            guard optionCount + state.implicitOptions.count <= maxOptionsPerCall, let id = state.optionID(name) else {
                return .fallback("option not handled")
            }
            slots.append(-1 - Int32(id))
        }
        return .plan(state.rememberPlan(slots, for: kwnames))
    }

    private func withBoundValues(_ bound: UnsafeBufferPointer<PyPtr?>,
                                 options: UnsafeBufferPointer<(UInt32, PyPtr)>) -> PyPtr? {
        let count = bound.count
        // Read once: every access through the unretained `state` costs a retain and a release.
        let traits = UnsafeBufferPointer(state.traits)
        let runtime = self.runtime
        return withUnsafeTemporaryAllocation(of: ArgumentValue.self, capacity: count) { values -> PyPtr? in
            for index in 0..<count {
                let object = bound[index]!
                let value: ArgumentValue?
                if traits[index].isConstexpr {
                    value = ArgumentReading.keyedValue(object)
                } else {
                    value = ArgumentReading.runtimeValue(object, runtime, anyDevice: probeDevice != nil)
                }
                guard let value else {
                    return fallback(runtime.isTensor(object) ? runtime.unreadableTensorReason(object)
                                                             : "argument type not handled")
                }
                (values.baseAddress! + index).initialize(to: value)
            }
            let readValues = UnsafeBufferPointer(rebasing: values[0..<count])
            // The launch device is the current context's, where cuLaunchKernelEx runs: the device
            // torch makes current (`torch.cuda.set_device`, `torch.cuda.device`) once it has a context.
            let device: Int32
            if let probeDevice {
                device = probeDevice
            } else {
                guard let driver = runtime.driver else { return fallback("no CUDA driver") }
                let current: Int32?
                do throws(DriverError) {
                    current = try driver.currentDevice()
                } catch {
                    return fallback(StepAside.driverQuery(error).label)
                }
                guard let current else { return fallback(StepAside.noCurrentContext.label) }
                device = current
            }
            // Sized to the call (at most three words a parameter, four an option) so it stays on the stack.
            let capacity = 1 + 3 * count + 4 * options.count
            return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: capacity) { words -> PyPtr? in
                var writer = DispatchKeyWriter(storage: words)
                do {
                    try writer.appendDevice(device)
                    for index in 0..<count {
                        if traits[index].isConstexpr {
                            try writer.appendConstexpr(readValues[index])
                        } else {
                            guard let spec = try? Specialization.forParameter(readValues[index],
                                                                              traits: traits[index])
                            else { return fallback("argument type not handled") }
                            try writer.append(spec)
                        }
                    }
                    for (id, object) in options {
                        guard let value = ArgumentReading.keyedValue(object) else {
                            return fallback("option not handled")
                        }
                        try writer.appendOption(name: id, value: value)
                    }
                } catch {
                    return fallback("too many parameters")
                }
                if probeDevice != nil {
                    let words = writer.words
                    return PyBytes_FromStringAndSize(
                        UnsafeRawPointer(words.baseAddress!).assumingMemoryBound(to: CChar.self), words.count * 8)
                }
                if let entry = state.cache.lookup(writer.words) {
                    return launchHit(entry, bound: bound, values: readValues, device: device)
                }
                return miss(key: writer.words, bound: bound, values: readValues)
            }
        }
    }

    // MARK: - Guards

    /// Everything that makes Triton's call do more than launch: any of it sends the call to Triton.
    private func guardFailure() -> StaticString? {
        guard let hooks = instanceAttribute(state.function, dict: state.functionDict, Names.preRunHooks) else {
            PyErr_Clear()
            return "pre-run hook"
        }
        let hookCount = SL_ListCheck(hooks) != 0 ? PyList_Size(hooks) : -1
        SL_DecRef(hooks)
        if hookCount != 0 { return "pre-run hook" }
        guard let debug = instanceAttribute(state.function, dict: state.functionDict, Names.debug) else {
            PyErr_Clear()
            return "debug"
        }
        let debugOff = isTrue(debug) == false
        SL_DecRef(debug)
        if !debugOff { PyErr_Clear(); return "debug" }
        guard let knobs = runtime.knobs else { return "triton not configured" }
        return knobs.failure()
    }

    /// Triton's `used_global_vals` check: true when every captured global still has its value.
    private func globalsUnchanged(pythonMayHaveRun: inout Bool) -> Bool {
        guard let used = instanceAttribute(state.function, dict: state.functionDict, Names.usedGlobalVals) else {
            PyErr_Clear()
            return false
        }
        defer { SL_DecRef(used) }
        guard SL_DictCheck(used) != 0 else { return false }
        if PyDict_Size(used) == 0 { return true }
        var position: Py_ssize_t = 0
        var key: PyPtr?
        var value: PyPtr?
        while PyDict_Next(used, &position, &key, &value) != 0 {
            // key: (name, id(globals)); value: (value, globals dict)
            guard let key, let value, SL_TupleCheck(key) != 0, SL_TupleCheck(value) != 0,
                  let name = PyTuple_GetItem(key, 0), let expected = PyTuple_GetItem(value, 0),
                  let globals = PyTuple_GetItem(value, 1), SL_DictCheck(globals) != 0
            else { PyErr_Clear(); return false }
            guard let current = PyDict_GetItemWithError(globals, name) else {
                PyErr_Clear()
                return false
            }
            // Owned across the comparison: a Python `__ne__` could rebind the global or empty `used`.
            SL_IncRef(current)
            SL_IncRef(expected)
            let comparison = CapturedGlobals.compare(current, expected, ranPython: &pythonMayHaveRun)
            SL_DecRef(current)
            SL_DecRef(expected)
            guard comparison == .equal else { return false }
        }
        return true
    }

    // MARK: - Hit

    private func launchHit(_ entry: CacheEntry, bound: UnsafeBufferPointer<PyPtr?>,
                           values: UnsafeBufferPointer<ArgumentValue>, device: Int32) -> PyPtr? {
        guard let driver = runtime.driver else { return fallback("no CUDA driver") }
        // Python code may run below (a global's `__eq__`, a callable grid, the scratch allocator), and
        // it may rebind a tensor argument's storage (`x.data = y`): addresses are then read again.
        var pythonMayHaveRun = false
        guard globalsUnchanged(pythonMayHaveRun: &pythonMayHaveRun) else { return fallback("captured global changed") }
        guard runtime.streamShim != nil || runtime.currentStream != nil else { return fallback("no CUDA device") }
        guard let stream = currentStream(device) else { return nil }
        let resolved: Grid?
        switch resolveGrid(bound, pythonMayHaveRun: &pythonMayHaveRun) {
        case let .grid(g): resolved = g
        case .notHandled: resolved = nil
        case .error: return nil
        }
        guard let grid = resolved else { return fallback("grid not handled") }
        var scratchAddress: UInt64 = 0
        var scratchBuffer: PyPtr?
        defer { if let scratchBuffer { SL_DecRef(scratchBuffer) } }
        if entry.launch.globalScratchSize > 0 {
            guard !grid.isEmpty else { return fallback("global scratch with an empty grid") }
            // Triton calls the allocator before its launcher rejects such a grid: it does both.
            guard grid.isLaunchable else { return fallback(StepAside.gridNotLaunchable.label) }
            pythonMayHaveRun = true
            switch allocateScratch(entry.launch, grid: grid, stream: stream, device: device, driver: driver) {
            case let .buffer(object, address):
                scratchBuffer = object
                scratchAddress = address
            case let .fallback(reason): return fallback(reason)
            case .error: return nil
            }
        }
        if pythonMayHaveRun {
            // Sound: `values` is the call's own temporary buffer (mutable memory), read only below.
            guard rereadTensorAddresses(bound, UnsafeMutableBufferPointer(mutating: values), device: device,
                                        driver: driver) else { return nil }
        }
        do throws(LaunchError) {
            // Without Python code since `device` was asked for, no context can have been switched.
            try entry.launch.launch(values: values, grid: grid, stream: stream, device: device,
                                    globalScratch: scratchAddress, driver: driver,
                                    deviceIsCurrent: !pythonMayHaveRun)
        } catch {
            switch error {
            case let .stepAside(reason): return fallback(reason.label)
            case let .driver(driverError):
                raise(SL_ExcRuntimeError(), driverError.description)
                return nil
            }
        }
        Stats.shared.hits &+= 1
        SL_IncRef(entry.compiled)
        return entry.compiled
    }

    private enum GridResult {
        case grid(Grid)
        case notHandled
        case error
    }

    /// torch's current stream for `device`, read on every call (a cached stream would break
    /// `torch.cuda.stream(...)` blocks and graph capture); nil with a Python error set.
    @inline(__always)
    private func currentStream(_ device: Int32) -> UInt64? {
        if let shim = runtime.streamShim {
            guard let stream = shim.stream(device: device) else {
                raise(SL_ExcRuntimeError(), "torch has no current stream for device \(device)")
                return nil
            }
            return stream
        }
        guard let query = runtime.currentStream else {  // the caller checked that one of the two exists
            raise(SL_ExcRuntimeError(), "swiftlaunch: no CUDA stream query configured")
            return nil
        }
        guard let deviceObject = newInteger(Int(device)) else { return nil }
        let streamObject = query(deviceObject)
        SL_DecRef(deviceObject)
        guard let streamObject else { return nil }
        let stream = UInt64(PyLong_AsUnsignedLong(streamObject))
        SL_DecRef(streamObject)
        if PyErr_Occurred() != nil { return nil }
        return stream
    }

    /// Triton reads tensor addresses at launch, after its grid function and scratch allocator ran; so
    /// does this, once Python code may have run since the arguments were read. The specialization
    /// stays the one chosen from the first read, as in Triton. An address that is no longer on the
    /// launch device is asked of the driver, as Triton asks it of every address; false, with
    /// Triton's ValueError set, when the driver does not know it.
    private func rereadTensorAddresses(_ bound: UnsafeBufferPointer<PyPtr?>,
                                       _ values: UnsafeMutableBufferPointer<ArgumentValue>,
                                       device: Int32, driver: DynamicDriver) -> Bool {
        for index in 0..<values.count {
            guard case let .tensor(dtype, address, tensorDevice) = values[index] else { continue }
            guard let object = bound[index], runtime.isTensor(object),
                  case let .tensor(_, newAddress, newDevice)? = runtime.readTensor(object, anyDevice: true)
            else {
                raise(SL_ExcRuntimeError(), "tensor argument \(index) changed while its launch was prepared and "
                      + "can no longer be read")
                return false
            }
            if newAddress == address && newDevice == tensorDevice { continue }
            if newDevice == device || newAddress == 0 {
                values[index] = .tensor(dtype: dtype, address: newAddress, device: device)
                continue
            }
            guard let info = try? driver.pointerInfo(newAddress) else {
                raise(SL_ExcValueError(), runtime.rules.pointerNotAccessibleMessage(position: index))
                return false
            }
            values[index] = .tensor(dtype: dtype, address: info.devicePointer, device: device)
        }
        return true
    }

    private func resolveGrid(_ bound: UnsafeBufferPointer<PyPtr?>, pythonMayHaveRun: inout Bool) -> GridResult {
        var gridObject = grid
        var owned: PyPtr?
        defer { if let owned { SL_DecRef(owned) } }
        if SL_TupleCheck(grid) == 0 && SL_ListCheck(grid) == 0 {
            guard PyCallable_Check(grid) != 0 else { return .notHandled }
            pythonMayHaveRun = true
            // Triton calls a callable grid with the bound arguments, defaults included.
            guard let arguments = PyDict_New() else { return .error }
            defer { SL_DecRef(arguments) }
            for (index, name) in state.names.enumerated() {
                if PyDict_SetItem(arguments, name, bound[index]!) < 0 { return .error }
            }
            guard let result = call(grid, arguments) else { return .error }
            owned = result
            gridObject = result
            guard SL_TupleCheck(result) != 0 || SL_ListCheck(result) != 0 else { return .notHandled }
        }
        // Borrowed items: a tuple or list keeps them alive while we read them.
        let isTuple = SL_TupleCheck(gridObject) != 0
        let size = isTuple ? PyTuple_Size(gridObject) : PyList_Size(gridObject)
        guard size >= 1 else { return .notHandled }
        var resolved = Grid(x: 1)
        for index in 0..<min(size, 3) {
            guard let item = isTuple ? PyTuple_GetItem(gridObject, index) : PyList_GetItem(gridObject, index)
            else { PyErr_Clear(); return .notHandled }
            guard SL_LongCheck(item) != 0, let value = readInteger(item), let narrow = Int64(exactly: value) else {
                return .notHandled
            }
            switch index {
            case 0: resolved.x = narrow
            case 1: resolved.y = narrow
            default: resolved.z = narrow
            }
        }
        return .grid(resolved)
    }

    private enum ScratchResult {
        case buffer(PyPtr, UInt64)
        case fallback(String)
        case error
    }

    /// Triton's `allocate_scratch` for global scratch: the allocator in its ContextVar, read on
    /// every launch, gets `(grid * num_ctas * size, align, stream)`.
    private func allocateScratch(_ launch: CompiledLaunch, grid: Grid, stream: UInt64, device: Int32,
                                 driver: DynamicDriver) -> ScratchResult {
        guard let variable = runtime.allocator, let nullType = runtime.nullAllocatorType else {
            return .fallback("global scratch")
        }
        guard let allocate = callMethodNoArgs(variable, Names.get) else { return .error }
        defer { SL_DecRef(allocate) }
        if UnsafeMutableRawPointer(SL_Type(allocate)) == UnsafeMutableRawPointer(nullType) {
            return .fallback("global scratch without an allocator")
        }
        // Every step checked: three grid dimensions below 2^31 overflow Int64 on their own, and an
        // unchecked overflow traps.
        let (xy, overflowXY) = grid.x.multipliedReportingOverflow(by: grid.y)
        let (xyz, overflowXYZ) = xy.multipliedReportingOverflow(by: grid.z)
        let (programs, overflowCTAs) = xyz.multipliedReportingOverflow(by: Int64(launch.numCTAs))
        let (product, overflowSize) = programs.multipliedReportingOverflow(by: Int64(launch.globalScratchSize))
        guard !(overflowXY || overflowXYZ || overflowCTAs || overflowSize), let size = newInteger(Int(product)),
              let align = newInteger(launch.globalScratchAlign), let streamObject = PyLong_FromUnsignedLongLong(stream)
        else { return .fallback("global scratch") }
        defer { SL_DecRef(size); SL_DecRef(align); SL_DecRef(streamObject) }
        guard let buffer = call(allocate, size, align, streamObject) else { return .error }
        guard let pointerObject = callMethodNoArgs(buffer, Names.dataPtr) else { SL_DecRef(buffer); return .error }
        let address = PyLong_AsUnsignedLongLong(pointerObject)
        SL_DecRef(pointerObject)
        if PyErr_Occurred() != nil { PyErr_Clear(); SL_DecRef(buffer); return .fallback("global scratch") }
        if address != 0 {
            guard let info = try? driver.pointerInfo(address), info.deviceOrdinal == device else {
                SL_DecRef(buffer)
                return .fallback("global scratch")
            }
            return .buffer(buffer, info.devicePointer)
        }
        return .buffer(buffer, 0)
    }

    // MARK: - Miss and fallback

    private func miss(key: UnsafeBufferPointer<UInt64>, bound: UnsafeBufferPointer<PyPtr?>,
                      values: UnsafeBufferPointer<ArgumentValue>) -> PyPtr? {
        Stats.shared.misses &+= 1
        let token = PyBytes_FromStringAndSize(
            UnsafeRawPointer(key.baseAddress!).assumingMemoryBound(to: CChar.self), key.count * 8)
        guard let token else { return nil }
        guard let spec = PyList_New(values.count) else { SL_DecRef(token); return nil }
        for index in 0..<values.count {
            let item: PyPtr?
            if state.traits[index].isConstexpr {
                guard let label = pyString("constexpr") else { SL_DecRef(token); SL_DecRef(spec); return nil }
                SL_IncRef(bound[index]!)
                item = TritonFormat.pair(label, bound[index]!)
            } else {
                // Cannot throw: the same call succeeded while building the key.
                let specialization = try! Specialization.forParameter(values[index], traits: state.traits[index])
                item = TritonFormat.tuple(specialization)
            }
            guard let item else { SL_DecRef(token); SL_DecRef(spec); return nil }
            PyList_SetItem(spec, index, item)
        }
        return callHandler(token: token, spec: spec)
    }

    private func fallback(_ reason: String) -> PyPtr? {
        if probeDevice != nil { return SL_NewRefNone() }
        Stats.fallback(reason)
        return callHandler(token: SL_NewRefNone(), spec: SL_NewRefNone())
    }

    /// Steals `token` and `spec`. Calls `miss(kernel, token, spec, grid, args, kwargs)` with the
    /// caller's own arguments, so Triton sees exactly the call it would have seen.
    private func callHandler(token: PyPtr, spec: PyPtr) -> PyPtr? {
        defer { SL_DecRef(token); SL_DecRef(spec) }
        guard let positional = PyTuple_New(positionalCount) else { return nil }
        defer { SL_DecRef(positional) }
        for index in 0..<positionalCount {
            SL_IncRef(args[index]!)
            PyTuple_SetItem(positional, index, args[index]!)
        }
        guard let keywords = PyDict_New() else { return nil }
        defer { SL_DecRef(keywords) }
        for index in 0..<keywordCount {
            if PyDict_SetItem(keywords, PyTuple_GetItem(kwnames!, index)!, args[positionalCount + index]!) < 0 {
                return nil
            }
        }
        return call(state.missHandler, kernelObject, token, spec, grid, positional, keywords)
    }
}
