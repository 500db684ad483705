// Latency histogram with 10 µs buckets up to 10 s: recording is one array increment, so the
// load generator spends its CPU on traffic, not on bookkeeping.
const bucketUs = 10
const buckets = 1_000_000

export class Histogram {
  private readonly counts = new Uint32Array(buckets)
  count = 0

  /** Records a latency in milliseconds. */
  record(ms: number): void {
    const index = Math.min(buckets - 1, Math.max(0, Math.round((ms * 1000) / bucketUs)))
    this.counts[index]!++
    this.count++
  }

  /** The latency in milliseconds below which `p` (0..1) of the samples fall. */
  percentile(p: number): number {
    if (this.count === 0) return Number.NaN
    const target = Math.ceil(this.count * p)
    let seen = 0
    for (let i = 0; i < buckets; i++) {
      seen += this.counts[i]!
      if (seen >= target) return (i * bucketUs) / 1000
    }
    return (buckets * bucketUs) / 1000
  }
}
