// Event sums for the e-prop kernel (EProp.swift): `addRows` (Network.swift) with row indices
// that are stored shifted, so that an input's event list (its spike steps t) can index the rows
// of a block (r = t - shift) without being copied.

/// out[0 ..< width] += sum over k of base[(rows[k] - shift) * stride ..< + width], for
/// rows[k] >= shift; width is a multiple of 8. The same tiles, accumulators and summation order
/// as `addRows` (which it equals for shift 0).
@inline(__always)
func addRowsShifted(_ rows: UnsafePointer<UInt16>, _ count: Int, shift: Int, from base: UnsafePointer<Float>, stride: Int,
                    into out: UnsafeMutablePointer<Float>, width: Int) {
    var col = 0
    while col + 64 <= width {
        var a0 = loadVec(out + col), a1 = loadVec(out + col + 8), a2 = loadVec(out + col + 16)
        var a3 = loadVec(out + col + 24), a4 = loadVec(out + col + 32), a5 = loadVec(out + col + 40)
        var a6 = loadVec(out + col + 48), a7 = loadVec(out + col + 56)
        for k in 0..<count {
            let p = base + (Int(rows[k]) &- shift) * stride + col
            a0 += loadVec(p); a1 += loadVec(p + 8); a2 += loadVec(p + 16); a3 += loadVec(p + 24)
            a4 += loadVec(p + 32); a5 += loadVec(p + 40); a6 += loadVec(p + 48); a7 += loadVec(p + 56)
        }
        storeVec(a0, out + col); storeVec(a1, out + col + 8); storeVec(a2, out + col + 16)
        storeVec(a3, out + col + 24); storeVec(a4, out + col + 32); storeVec(a5, out + col + 40)
        storeVec(a6, out + col + 48); storeVec(a7, out + col + 56)
        col += 64
    }
    while col + 32 <= width {
        var a0 = loadVec(out + col), a1 = loadVec(out + col + 8)
        var a2 = loadVec(out + col + 16), a3 = loadVec(out + col + 24)
        var b0 = Vec(), b1 = Vec(), b2 = Vec(), b3 = Vec()
        var k = 0
        while k + 1 < count {
            let p = base + (Int(rows[k]) &- shift) * stride + col, q = base + (Int(rows[k + 1]) &- shift) * stride + col
            a0 += loadVec(p); a1 += loadVec(p + 8); a2 += loadVec(p + 16); a3 += loadVec(p + 24)
            b0 += loadVec(q); b1 += loadVec(q + 8); b2 += loadVec(q + 16); b3 += loadVec(q + 24)
            k += 2
        }
        if k < count {
            let p = base + (Int(rows[k]) &- shift) * stride + col
            a0 += loadVec(p); a1 += loadVec(p + 8); a2 += loadVec(p + 16); a3 += loadVec(p + 24)
        }
        storeVec(a0 + b0, out + col); storeVec(a1 + b1, out + col + 8)
        storeVec(a2 + b2, out + col + 16); storeVec(a3 + b3, out + col + 24)
        col += 32
    }
    while col + 16 <= width {
        var a0 = loadVec(out + col), a1 = loadVec(out + col + 8), b0 = Vec(), b1 = Vec()
        var k = 0
        while k + 1 < count {
            let p = base + (Int(rows[k]) &- shift) * stride + col, q = base + (Int(rows[k + 1]) &- shift) * stride + col
            a0 += loadVec(p); a1 += loadVec(p + 8)
            b0 += loadVec(q); b1 += loadVec(q + 8)
            k += 2
        }
        if k < count {
            let p = base + (Int(rows[k]) &- shift) * stride + col
            a0 += loadVec(p); a1 += loadVec(p + 8)
        }
        storeVec(a0 + b0, out + col); storeVec(a1 + b1, out + col + 8)
        col += 16
    }
    while col < width {
        var a0 = loadVec(out + col), a1 = Vec(), a2 = Vec(), a3 = Vec()
        var k = 0
        while k + 3 < count {
            a0 += loadVec(base + (Int(rows[k]) &- shift) * stride + col)
            a1 += loadVec(base + (Int(rows[k + 1]) &- shift) * stride + col)
            a2 += loadVec(base + (Int(rows[k + 2]) &- shift) * stride + col)
            a3 += loadVec(base + (Int(rows[k + 3]) &- shift) * stride + col)
            k += 4
        }
        while k < count { a0 += loadVec(base + (Int(rows[k]) &- shift) * stride + col); k += 1 }
        storeVec((a0 + a1) + (a2 + a3), out + col)
        col += 8
    }
}

