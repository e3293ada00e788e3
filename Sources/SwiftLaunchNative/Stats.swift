@preconcurrency import CPython
import SwiftLaunchCore

/// Why a call went to Triton's own path, counted for `swiftlaunch.stats()`.
struct Stats {
    var hits = 0
    var misses = 0
    var fallbacks: [String: Int] = [:]

    nonisolated(unsafe) static var shared = Stats()

    static func fallback(_ reason: String) {
        shared.fallbacks[reason, default: 0] += 1
    }
}

/// `_native.stats(reset)` → `{"hits": n, "misses": n, "fallbacks": {reason: n}}`.
let statsFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, reset in
    guard let reset, let resetting = isTrue(reset) else { return nil }
    guard let result = PyDict_New(), let fallbacks = PyDict_New() else { return nil }
    defer { SL_DecRef(fallbacks) }
    let stats = Stats.shared
    for (reason, count) in stats.fallbacks.sorted(by: { $0.key < $1.key }) {
        guard let number = newInteger(count) else { SL_DecRef(result); return nil }
        PyDict_SetItemString(fallbacks, reason, number)
        SL_DecRef(number)
    }
    for (name, value) in [("hits", stats.hits), ("misses", stats.misses)] {
        guard let number = newInteger(value) else { SL_DecRef(result); return nil }
        PyDict_SetItemString(result, name, number)
        SL_DecRef(number)
    }
    PyDict_SetItemString(result, "fallbacks", fallbacks)
    if resetting { Stats.shared = Stats() }
    return result
}

/// `_native.count_fallback(reason)`: the glue's own step-asides (the interpreter, say).
let countFallbackFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, reason in
    guard let reason, SL_UnicodeCheck(reason) != 0 else {
        raise(SL_ExcTypeError(), "count_fallback(reason) takes a str")
        return nil
    }
    guard let text = swiftString(reason) else { return nil }
    Stats.fallback(text)
    return SL_NewRefNone()
}
