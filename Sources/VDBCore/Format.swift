/// Number formatting for reports.
public enum Format {
    public static func fixed(_ value: Double, _ digits: Int) -> String {
        var s = String(Int((abs(value) * pow10(digits)).rounded()))
        if digits > 0 {
            if s.count <= digits { s = String(repeating: "0", count: digits - s.count + 1) + s }
            s.insert(".", at: s.index(s.endIndex, offsetBy: -digits))
        }
        return (value < 0 && s.contains(where: { $0 != "0" && $0 != "." }) ? "-" : "") + s
    }

    public static func bytes(_ value: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(value)
        var u = 0
        while v >= 1024 && u < units.count - 1 {
            v /= 1024
            u += 1
        }
        return u == 0 ? "\(value) B" : fixed(v, 1) + " " + units[u]
    }

    private static func pow10(_ n: Int) -> Double { (0..<n).reduce(1.0) { r, _ in r * 10 } }
}
