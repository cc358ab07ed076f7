/**
 * Benchmark support: synthetic full-size inputs ({@link tenmin.tools.bench.BenchInputs}) for the resize
 * and chop benchmarks of docs/PERFORMANCE.md. Library code; may import formats and core, never cli.
 */
package tenmin.tools.bench;
