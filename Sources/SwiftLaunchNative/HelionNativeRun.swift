@preconcurrency import CPython
import SwiftLaunchCore

// The second stage of the Helion dispatch: a whole wrapper call run natively (guard → allocate →
// launch → return), with no Python frame. Which wrappers qualify is decided by the glue from the
// wrapper's source (`swiftlaunch._helion_plan`), and each entry's plan is recorded from one real
// call of that entry: the glue's recorder runs the call once (launching once) and returns the plan
// with the result. Until then, and for every wrapper that does not qualify, a hit calls the wrapper
// with the native launcher (the first stage).

/// One value a planned call passes: an argument of the current call, an output allocated earlier in
/// this call, or a value recorded once for the entry (metadata expressions, the grid, the kernel).
/// A constant is borrowed from its plan's `constants`, so that reading a value on the per-call path
/// costs no reference counting.
enum PlanValue {
    case input(Int)
    case output(Int)
    case constant(PyPtr)
}

/// One call of the plan: an allocation (`callable` set) or the launch (`callable` nil: the table's
/// launcher). The last `keywordCount` values go by the names in `keywordNames`.
final class PlanCall {
    let callable: PyRef?
    let values: [PlanValue]
    let keywordNames: PyRef?
    let keywordCount: Int
    /// Whether the pool may stand in for this allocation (decided by the glue from its source).
    let poolable: Bool
    /// The value whose names the result would copy or refuse (`empty_like`'s and `new_empty`'s
    /// source tensor): with names, the pool does not stand in.
    let namesFrom: Int?

    init(callable: PyRef?, values: [PlanValue], keywordNames: PyRef?, keywordCount: Int, poolable: Bool,
         namesFrom: Int? = nil) {
        self.callable = callable
        self.values = values
        self.keywordNames = keywordNames
        self.keywordCount = keywordCount
        self.poolable = poolable
        self.namesFrom = namesFrom
    }
}

/// An entry's recorded call.
final class HelionPlan {
    let argumentCount: Int
    let allocations: [PlanCall]
    let launch: PlanCall
    let returnsTuple: Bool
    let returned: [PlanValue]
    /// The entry's output pool, when the pool is on (`swiftlaunch.helion.install(output_pool=True)`).
    let pool: OutputPool?
    /// Owns every `.constant` the calls pass, for as long as the plan lives.
    let constants: [PyRef]

    init(argumentCount: Int, allocations: [PlanCall], launch: PlanCall, returnsTuple: Bool, returned: [PlanValue],
         pool: OutputPool?, constants: [PyRef]) {
        self.constants = constants
        self.argumentCount = argumentCount
        self.allocations = allocations
        self.launch = launch
        self.returnsTuple = returnsTuple
        self.returned = returned
        self.pool = pool
    }

    /// Decodes the glue's plan `(allocations, (values, keyword_names), (returns_tuple, values))`, each
    /// allocation `(callable, values, keyword_names, poolable, names_from)` (see `_helion_plan._plan`);
    /// nil (no Python error) when it is not well formed for `count`
    /// arguments. Every index is checked here, so the run never reads outside the call's arguments
    /// or outputs.
    static func decode(_ plan: PyPtr, argumentCount count: Int) -> HelionPlan? {
        var constants: [PyRef] = []
        func tuple(_ object: PyPtr?, _ size: Int? = nil) -> [PyPtr]? {
            guard let object, SL_TupleCheck(object) != 0 else { return nil }
            let items = (0..<PyTuple_Size(object)).map { PyTuple_GetItem(object, $0)! }
            if let size, items.count != size { return nil }
            return items
        }
        func value(_ object: PyPtr, outputs: Int) -> PlanValue? {
            guard let pair = tuple(object, 2), SL_LongCheck(pair[0]) != 0 else { return nil }
            let kind = PyLong_AsLong(pair[0])
            if kind == 2 {
                constants.append(PyRef(borrowing: pair[1]))
                return .constant(pair[1])
            }
            guard SL_LongCheck(pair[1]) != 0 else { return nil }
            let index = PyLong_AsLong(pair[1])
            if PyErr_Occurred() != nil { PyErr_Clear(); return nil }
            switch kind {
            case 0 where index >= 0 && index < count: return .input(index)
            case 1 where index >= 0 && index < outputs: return .output(index)
            default: return nil
            }
        }
        func planCall(callable: PyPtr?, valuesObject: PyPtr, namesObject: PyPtr, outputs: Int, poolable: Bool,
                      namesFrom: Int? = nil) -> PlanCall? {
            guard let items = tuple(valuesObject) else { return nil }
            var values: [PlanValue] = []
            for item in items {
                guard let decoded = value(item, outputs: outputs) else { return nil }
                values.append(decoded)
            }
            var keywordCount = 0
            var names: PyRef?
            if namesObject != SL_None() {
                guard let keywords = tuple(namesObject), keywords.allSatisfy({ SL_UnicodeCheck($0) != 0 }),
                      keywords.count <= values.count
                else { return nil }
                keywordCount = keywords.count
                if keywordCount > 0 { names = PyRef(borrowing: namesObject) }
            }
            if let namesFrom, !values.indices.contains(namesFrom) { return nil }
            return PlanCall(callable: callable.map { PyRef(borrowing: $0) }, values: values, keywordNames: names,
                            keywordCount: keywordCount, poolable: poolable, namesFrom: namesFrom)
        }
        guard let parts = tuple(plan, 3), let allocationItems = tuple(parts[0]), let launchParts = tuple(parts[1], 2),
              let returnParts = tuple(parts[2], 2), let returnedItems = tuple(returnParts[1])
        else { return nil }
        var allocations: [PlanCall] = []
        for (index, item) in allocationItems.enumerated() {
            // An allocation may pass outputs made before it, never itself or later ones.
            guard let fields = tuple(item, 5) else { return nil }
            var namesFrom: Int?
            if fields[4] != SL_None() {
                guard SL_LongCheck(fields[4]) != 0 else { return nil }
                namesFrom = PyLong_AsLong(fields[4])
                if PyErr_Occurred() != nil { PyErr_Clear(); return nil }
            }
            guard let decoded = planCall(callable: fields[0], valuesObject: fields[1], namesObject: fields[2],
                                         outputs: index, poolable: fields[3] == SL_True(), namesFrom: namesFrom)
            else { return nil }
            allocations.append(decoded)
        }
        let outputs = allocations.count
        guard let launch = planCall(callable: nil, valuesObject: launchParts[0], namesObject: launchParts[1],
                                    outputs: outputs, poolable: false),
              launch.values.count - launch.keywordCount >= 2
        else { return nil }
        var returned: [PlanValue] = []
        for item in returnedItems {
            guard let decoded = value(item, outputs: outputs) else { return nil }
            if case .constant = decoded { return nil }
            returned.append(decoded)
        }
        let returnsTuple = returnParts[0] == SL_True()
        guard returnsTuple || returned.count <= 1 else { return nil }
        let pool = OutputPool.isOn && allocations.contains(where: \.poolable) ? OutputPool(count: outputs) : nil
        return HelionPlan(argumentCount: count, allocations: allocations, launch: launch, returnsTuple: returnsTuple,
                          returned: returned, pool: pool, constants: constants)
    }

    /// The call: allocate (or take from the pool) → launch through `launcher` → the result as the
    /// wrapper returns it. An exception from an allocation or the launch propagates, as from the
    /// wrapper; nothing is launched after a failed allocation.
    func run(launcher: PyPtr, args: PyPtr) -> PyPtr? {
        let count = allocations.count
        return withUnsafeTemporaryAllocation(of: PyPtr?.self, capacity: max(count, 1)) { outputs -> PyPtr? in
            outputs.initialize(repeating: nil)
            defer {
                for output in outputs { if let output { SL_DecRef(output) } }
            }
            // The pool looks at the call's context (stream, capture, modes) once, before any output.
            let context = pool?.context()
            var fresh = 0
            for index in 0..<count {
                let planned = allocations[index]
                if let context, planned.poolable,
                   planned.namesFrom.map({ tensorIsUnnamed(resolve(planned.values[$0], args, outputs)) }) ?? true,
                   let reused = pool!.take(index, context) {
                    outputs[index] = reused
                    continue
                }
                guard let made = invoke(allocations[index], allocations[index].callable!.object, args, outputs) else {
                    return nil
                }
                outputs[index] = made
                fresh += 1
            }
            guard let launched = invoke(launch, launcher, args, outputs) else { return nil }
            SL_DecRef(launched)
            if let context, let pool {
                for index in 0..<count where allocations[index].poolable {
                    pool.keep(index, outputs[index]!, context)
                }
            }
            if !returnsTuple {
                guard let only = returned.first else { return SL_NewRefNone() }
                let object = resolve(only, args, outputs)
                SL_IncRef(object)
                return object
            }
            guard let result = PyTuple_New(returned.count) else { return nil }
            for (position, value) in returned.enumerated() {
                let object = resolve(value, args, outputs)
                SL_IncRef(object)
                PyTuple_SetItem(result, position, object)  // steals the reference
            }
            return result
        }
    }

    /// The object a value stands for in this call (borrowed).
    @inline(__always)
    private func resolve(_ value: PlanValue, _ args: PyPtr, _ outputs: UnsafeMutableBufferPointer<PyPtr?>) -> PyPtr {
        switch value {
        case let .input(index): return PyTuple_GetItem(args, index)!
        case let .output(index): return outputs[index]!
        case let .constant(object): return object
        }
    }

    /// `callable(*values)` through vectorcall; the objects are borrowed from the arguments tuple, the
    /// outputs and the plan, all alive for the whole call.
    private func invoke(_ planned: PlanCall, _ callable: PyPtr, _ args: PyPtr,
                        _ outputs: UnsafeMutableBufferPointer<PyPtr?>) -> PyPtr? {
        let values = planned.values
        return withUnsafeTemporaryAllocation(of: PyPtr?.self, capacity: values.count + 1) { slots -> PyPtr? in
            // Slot 0 stays free for the arguments-offset flag.
            slots[0] = nil
            for (index, value) in values.enumerated() { slots[index + 1] = resolve(value, args, outputs) }
            return call(callable, UnsafePointer(slots.baseAddress! + 1),
                        count: (values.count - planned.keywordCount) | SL_VectorcallArgumentsOffset(),
                        kwnames: planned.keywordNames?.object)
        }
    }
}

/// Where an entry stands in the second stage.
enum NativeRunStage {
    /// No call of this entry has been recorded yet: the next hit records one.
    case unrecorded
    /// The wrapper (or this entry's call) cannot run natively; the reason was counted once.
    case firstStage
    case planned(HelionPlan)
}

enum HelionNativeRun {
    /// `record(run, launcher, args)` → `(result, plan or reason)`, from the glue; nil: no second stage.
    nonisolated(unsafe) static var recorder: PyRef?
    nonisolated(unsafe) static var nativeRuns = 0
    nonisolated(unsafe) static var recorded = 0

    /// A hit: the entry's plan when it has one, else a recording call when the second stage is on,
    /// else the first stage (the wrapper with the native launcher).
    static func hit(_ entry: HelionEntry, launcher: PyPtr, args: PyPtr) -> PyPtr? {
        switch entry.stage {
        case let .planned(plan):
            if PyTuple_Size(args) == plan.argumentCount {
                nativeRuns &+= 1
                // An allocation can run the cycle collector, and with it finalizers that may change
                // the table: the entry (with its plan) and the launcher stay alive through the call,
                // as in the first stage.
                SL_IncRef(launcher)
                defer { SL_DecRef(launcher) }
                return withExtendedLifetime(entry) { plan.run(launcher: launcher, args: args) }
            }
            return HelionDispatch.run(entry, launcher: launcher, args: args)
        case .firstStage:
            return HelionDispatch.run(entry, launcher: launcher, args: args)
        case .unrecorded:
            guard let recorder else { return HelionDispatch.run(entry, launcher: launcher, args: args) }
            return record(entry, recorder: recorder, launcher: launcher, args: args)
        }
    }

    /// The recorded call: the glue runs the wrapper's twin once and returns its result with the plan.
    private static func record(_ entry: HelionEntry, recorder: PyRef, launcher: PyPtr, args: PyPtr) -> PyPtr? {
        // Python code runs below and may drop the entry from its table or uninstall: keep what is used.
        return withExtendedLifetime((entry, recorder, PyRef(borrowing: launcher))) { () -> PyPtr? in
            guard let pair = call(recorder.object, entry.run, launcher, args) else {
                // The call itself raised (as the wrapper would have); nothing is decided for the entry.
                return nil
            }
            defer { SL_DecRef(pair) }
            guard SL_TupleCheck(pair) != 0, PyTuple_Size(pair) == 2, let result = PyTuple_GetItem(pair, 0),
                  let planObject = PyTuple_GetItem(pair, 1)
            else {
                PyErr_Clear()
                raise(SL_ExcRuntimeError(), "swiftlaunch: the Helion recorder returned something else than (result, plan)")
                return nil
            }
            if SL_UnicodeCheck(planObject) != 0 {
                Stats.fallback(swiftString(planObject) ?? "helion native run: not eligible")
                entry.stage = .firstStage
            } else if let plan = HelionPlan.decode(planObject, argumentCount: PyTuple_Size(args)) {
                entry.stage = .planned(plan)
                recorded &+= 1
            } else {
                PyErr_Clear()
                Stats.fallback("helion native run: plan not decodable")
                entry.stage = .firstStage
            }
            SL_IncRef(result)
            return result
        }
    }
}

/// `_native.helion_native_configure(recorder)`: turns the second stage on with the glue's recorder,
/// or off with None (entries already planned keep their plans until they are dropped).
let helionNativeConfigureFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, recorder in
    guard let recorder else { return nil }
    if recorder == SL_None() {
        HelionNativeRun.recorder = nil
    } else {
        guard PyCallable_Check(recorder) != 0 else {
            raise(SL_ExcTypeError(), "helion_native_configure(recorder: callable or None)")
            return nil
        }
        HelionNativeRun.recorder = PyRef(borrowing: recorder)
    }
    return SL_NewRefNone()
}
