import Foundation

// Numbers as the console, the summaries and the error messages print them. Every function here uses the C
// locale ("." for the decimal point whatever the environment says), so logs read and parse the same everywhere.

/// 1234567 → "1,234,567".
public func group(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
        out.append(ch)
    }
    return n < 0 ? "-" + out : out
}

/// `x` with `decimals` digits after the point: fixed(3.14159, 2) → "3.14"; "inf", "-inf" and "nan" as such.
public func fixed(_ x: Double, _ decimals: Int) -> String {
    x.isFinite ? String(format: "%.\(max(0, decimals))f", x) : "\(x)"
}

/// A fraction as a percentage with two decimals: 0.1234 → "12.34%"; "n/a" when it is not finite (no samples).
public func percent(_ x: Double) -> String {
    x.isFinite ? String(format: "%.2f%%", 100 * x) : "n/a"
}

/// Three significant digits, in exponent form when very large or small: 0.000123456 → "0.000123", 1e-7 → "1e-07".
public func significant(_ x: Double) -> String {
    String(format: "%.3g", x)
}

/// Rounded to three decimals, in the shortest form: 1.23456 → "1.235", 0.5 → "0.5", 2 → "2.0".
public func threeDecimals(_ x: Double) -> String {
    "\((x * 1000).rounded() / 1000)"
}

/// A duration as a clock shows it: 65 → "01:05", 3725 → "1:02:05"; "--:--" when unknown.
public func minutesAndSeconds(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "--:--" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
        : String(format: "%02d:%02d", s / 60, s % 60)
}
