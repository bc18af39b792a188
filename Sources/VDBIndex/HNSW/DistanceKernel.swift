import CVDBKernels
import VDBCore

/// A metric's ranking distance as a type, so graph code is specialised per metric and the
/// kernel choice is made once, outside every loop (hnswlib does this with templates).
protocol DistanceKernel: SendableMetatype {
    static func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ dimension: Int) -> Float
}

/// Squared Euclidean distance (`l2`).
enum SquaredL2Kernel: DistanceKernel {
    @inline(__always)
    static func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ dimension: Int) -> Float {
        vdb_l2sq_f32(a, b, dimension)
    }
}

/// Negated inner product (`cosine` on unit vectors, and `dot`).
enum NegatedDotKernel: DistanceKernel {
    @inline(__always)
    static func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ dimension: Int) -> Float {
        -vdb_dot_f32(a, b, dimension)
    }
}

/// Which rows a search may return, decided by a generic parameter so the common case (all
/// rows) compiles to no check at all.
protocol RowPredicate {
    func accepts(_ row: UInt32) -> Bool
}

/// Every row.
struct AllRows: RowPredicate {
    @inline(__always) func accepts(_ row: UInt32) -> Bool { true }
}

/// Rows in a set (a filter's matches, or the complement of tombstones).
struct RowsInSet: RowPredicate {
    let set: RowSet
    @inline(__always) func accepts(_ row: UInt32) -> Bool { set.contains(row) }
}

/// Nodes of a renumbered graph whose rows are in a set.
struct NodesWithRowsInSet: RowPredicate {
    let set: RowSet
    let rows: UnsafePointer<UInt32>
    @inline(__always) func accepts(_ node: UInt32) -> Bool { set.contains(rows[Int(node)]) }
}
