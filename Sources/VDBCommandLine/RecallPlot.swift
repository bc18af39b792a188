import VDBKit

/// A recall-versus-throughput plot as a standalone SVG (no plotting library needed): recall on
/// the x axis, queries per second on a log-scale y axis, one polyline per engine.
public enum RecallPlot {
    public struct Series: Sendable {
        public var name: String
        /// (recall, queries per second, label)
        public var points: [(Double, Double, String)]
        public init(name: String, points: [(Double, Double, String)]) {
            self.name = name
            self.points = points
        }
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]

    public static func svg(title: String, series: [Series], width: Int = 720, height: Int = 480) -> String {
        let all = series.flatMap(\.points)
        let left = 70.0, right = Double(width) - 20, top = 40.0, bottom = Double(height) - 50
        let minRecall = max(0, min(all.map(\.0).min() ?? 0, 0.9) - 0.02)
        let maxRecall = 1.0
        let qps = all.map(\.1).filter { $0 > 0 }
        let lowExponent = floor(log10(qps.min() ?? 1)), highExponent = ceil(log10(qps.max() ?? 10))
        let span = max(1, highExponent - lowExponent)
        func x(_ recall: Double) -> Double { left + (recall - minRecall) / (maxRecall - minRecall) * (right - left) }
        func y(_ q: Double) -> Double { bottom - (log10(max(q, 1e-9)) - lowExponent) / span * (bottom - top) }
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(width / 2)" y="22" text-anchor="middle" font-size="14">\(escape(title))</text>
            <line x1="\(left)" y1="\(bottom)" x2="\(right)" y2="\(bottom)" stroke="black"/>
            <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(bottom)" stroke="black"/>
            <text x="\((left + right) / 2)" y="\(height - 12)" text-anchor="middle">recall@10</text>
            <text x="16" y="\((top + bottom) / 2)" text-anchor="middle" transform="rotate(-90 16 \((top + bottom) / 2))">queries per second (log)</text>

            """
        var tick = minRecall
        while tick <= maxRecall + 1e-9 {
            out += "<line x1=\"\(x(tick))\" y1=\"\(bottom)\" x2=\"\(x(tick))\" y2=\"\(bottom + 5)\" stroke=\"black\"/>"
            out += "<text x=\"\(x(tick))\" y=\"\(bottom + 18)\" text-anchor=\"middle\">\(Format.fixed(tick, 2))</text>\n"
            tick += (maxRecall - minRecall) / 5
        }
        var e = lowExponent
        while e <= highExponent {
            let v = pow10(e)
            out += "<line x1=\"\(left - 5)\" y1=\"\(y(v))\" x2=\"\(right)\" y2=\"\(y(v))\" stroke=\"#ddd\"/>"
            out += "<text x=\"\(left - 8)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(Int(v))</text>\n"
            e += 1
        }
        for (i, s) in series.enumerated() {
            let color = palette[i % palette.count]
            let points = s.points.sorted { $0.0 < $1.0 }.map { "\(x($0.0)),\(y($0.1))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points)\"/>\n"
            for p in s.points {
                out += "<circle cx=\"\(x(p.0))\" cy=\"\(y(p.1))\" r=\"3\" fill=\"\(color)\"><title>\(escape(s.name)) \(escape(p.2)): recall \(Format.fixed(p.0, 4)), \(Format.fixed(p.1, 0)) QPS</title></circle>\n"
            }
            out += "<rect x=\"\(right - 150)\" y=\"\(top + 8 + Double(i) * 18)\" width=\"12\" height=\"12\" fill=\"\(color)\"/>"
            out += "<text x=\"\(right - 132)\" y=\"\(top + 18 + Double(i) * 18)\">\(escape(s.name))</text>\n"
        }
        return out + "</svg>\n"
    }

    private static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    private static func pow10(_ e: Double) -> Double { (0..<Int(e)).reduce(1.0) { r, _ in r * 10 } }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
