// Counter-based random numbers: known answers and the `rng` fixture (bitwise).
import XCTest
import CSpikeLoc
import SpikeLocKernels

final class RandomTests: XCTestCase {
    /// SplitMix64 with state 0 (the published reference sequence): word(key 0, w) is its w-th output.
    func testSplitMix64KnownAnswers() throws {
        XCTAssertEqual(CounterRNG.word(key: 0, 0), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(CounterRNG.word(key: 0, 1), 0x6E78_9E6A_A1B9_65F4)
        XCTAssertEqual(CounterRNG.word(key: 0, 2), 0x06C4_5D18_8009_454F)
        XCTAssertEqual(CounterRNG.word(key: 0, 3), 0xF88B_B8A8_724C_81EC)
        XCTAssertEqual(CounterRNG.mix64(0), 0)
        XCTAssertEqual(CounterRNG.gamma, 0x9E37_79B9_7F4A_7C15)
        let f = try Fixture("rng")
        XCTAssertEqual(CounterRNG.word(key: 0, 0), try f.hex("splitmix_word_key0_w0"))
        XCTAssertEqual(CounterRNG.word(key: 0, 1), try f.hex("splitmix_word_key0_w1"))
    }

    /// key, word and uniform53 compose exactly as spikeloc.h states (mod 2^64 arithmetic).
    func testKeyAndWordDefinitions() {
        let g = CounterRNG.gamma
        for (seed, index) in [(UInt64(1), UInt64(2)), (12345, 0), (UInt64.max, UInt64(Int64.max)), (0, 1 << 40)] {
            let k = CounterRNG.key(seed: seed, index: index)
            XCTAssertEqual(k, CounterRNG.mix64(CounterRNG.mix64(seed) ^ (index &* g)))
            for w: UInt64 in [0, 1, 7, CounterRNG.wordIPD, CounterRNG.wordPhase, UInt64.max] {
                let word = CounterRNG.word(key: k, w)
                XCTAssertEqual(word, CounterRNG.mix64(k &+ (w &+ 1) &* g))
                let u = CounterRNG.uniform53(key: k, word: w)
                XCTAssertEqual(u, Double(word >> 11) / 9_007_199_254_740_992.0)
                XCTAssertTrue(u >= 0 && u < 1)
            }
            // stimulus elements 2w and 2w+1 are the top 24 bits and bits 8..31 of word w
            for e: UInt64 in 0..<10 {
                let word = CounterRNG.word(key: k, e / 2)
                let expected = e % 2 == 0 ? word >> 40 : (word >> 8) & 0xFF_FFFF
                XCTAssertEqual(UInt64(CounterRNG.stimulusBits(key: k, element: e)), expected, "element \(e)")
            }
        }
        XCTAssertEqual(CounterRNG.key(seed: 1, index: 2), 0x4968_764F_9AF8_B381)
        XCTAssertEqual(CounterRNG.wordIPD, 1 << 62)
        XCTAssertEqual(CounterRNG.wordPhase, (1 << 62) + 1)
        XCTAssertEqual(CounterRNG.setIndex, Int64.max)
    }

    /// spk_stimulus_uniforms equals the reference U of stream (seed, index) bit for bit.
    func testStimulusUniformsMatchFixture() throws {
        let f = try Fixture("rng")
        let seed = try f.uint64("seed"), index = try f.int("index"), n = try f.int("n")
        let expected = try f.array("uniforms", shape: [n]).doubles()
        var out = [Float](repeating: -1, count: n)
        XCTAssertEqual(spk_stimulus_uniforms(seed, Int64(index), Int64(n), &out), SPK_OK)
        for e in 0..<n {
            XCTAssertEqual(Double(out[e]).bitPattern, expected[e].bitPattern, "U[\(e)] = \(out[e]), reference \(expected[e])")
        }
        // every U is an exact multiple of 2^-24 in [0, 1), and not all equal
        for u in out { XCTAssertTrue(u >= 0 && u < 1 && (u * 0x1p24).rounded() == u * 0x1p24) }
        XCTAssertGreaterThan(Set(out).count, n / 2)
        // a prefix request gives the prefix
        var prefix = [Float](repeating: -1, count: 5)
        XCTAssertEqual(spk_stimulus_uniforms(seed, Int64(index), 5, &prefix), SPK_OK)
        XCTAssertEqual(bitPatterns(prefix), bitPatterns(Array(out[0..<5])))
        // another stream differs
        var other = [Float](repeating: -1, count: n)
        XCTAssertEqual(spk_stimulus_uniforms(seed, Int64(index + 1), Int64(n), &other), SPK_OK)
        XCTAssertNotEqual(bitPatterns(other), bitPatterns(out))
    }

    /// spk_uniform53 equals the reference draws bit for bit; each sample is its own stream.
    func testUniform53MatchesFixture() throws {
        let f = try Fixture("rng")
        let seed = try f.uint64("uniform53_seed"), first = try f.int("uniform53_first_index")
        let word = try f.uint64("uniform53_word"), n = try f.int("uniform53_n")
        XCTAssertEqual(word, CounterRNG.wordIPD)
        let expected = try f.array("uniform53", shape: [n]).doubles()
        var out = [Double](repeating: -1, count: n)
        XCTAssertEqual(spk_uniform53(seed, Int64(first), word, Int64(n), &out), SPK_OK)
        for b in 0..<n {
            XCTAssertEqual(out[b].bitPattern, expected[b].bitPattern, "uniform53[\(b)] = \(out[b]), reference \(expected[b])")
            // the same draw, requested alone
            var one = [-1.0]
            XCTAssertEqual(spk_uniform53(seed, Int64(first + b), word, 1, &one), SPK_OK)
            XCTAssertEqual(one[0].bitPattern, expected[b].bitPattern)
        }
        // n = 0 writes nothing and succeeds
        var untouched = [-1.0]
        XCTAssertEqual(spk_uniform53(seed, 0, word, 0, &untouched), SPK_OK)
        XCTAssertEqual(untouched[0], -1)
    }

    /// The per-set phase offset: uniform53(key(seed, INT64_MAX), SPK_WORD_PHASE), typed API.
    func testPerSetPhaseDraw() throws {
        let f = try Fixture("rng")
        let seed = try f.uint64("seed"), expected = try f.double("phase_per_set")
        let key = CounterRNG.key(seed: seed, index: UInt64(CounterRNG.setIndex))
        let phase = CounterRNG.uniform53(key: key, word: CounterRNG.wordPhase)
        XCTAssertEqual(phase.bitPattern, expected.bitPattern, "per-set phase \(phase), reference \(expected)")
    }

    /// The per-set phase offset through the C ABI, as python/spikeloc/stimulus.py draws it:
    /// spk_uniform53(seed, SPK_SET_INDEX, SPK_WORD_PHASE, 1, out). The header allows it
    /// (first_index + b for b < n = 1 does not overflow).
    func testPerSetPhaseDrawThroughCABI() throws {
        let f = try Fixture("rng")
        let seed = try f.uint64("seed"), expected = try f.double("phase_per_set")
        var out = [-1.0]
        let status = spk_uniform53(seed, Int64.max, CounterRNG.wordPhase, 1, &out)
        XCTAssertEqual(status, SPK_OK, "spk_uniform53(seed, SPK_SET_INDEX, SPK_WORD_PHASE, 1) failed: \(lastError())")
        XCTAssertEqual(out[0].bitPattern, expected.bitPattern, "per-set phase \(out[0]), reference \(expected)")
        // the largest valid ranges just below the limit work too
        var two = [-1.0, -1.0]
        XCTAssertEqual(spk_uniform53(seed, Int64.max - 1, CounterRNG.wordPhase, 2, &two), SPK_OK, lastError())
        XCTAssertEqual(two[1].bitPattern, expected.bitPattern)
    }
}
