package tenmin.engine.api;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Where a stretch of model code spends its time, per backend op: the host's time to issue each call, and the
 * device's time from the end of the op before to the end of this one ({@link DeviceClock}: CUDA events on a GPU,
 * the wall clock where ops run on the calling thread). Wrap the backend ({@link #wrap}), build and run the model
 * on scopes of the wrapped backend, and time a stretch with {@link #start}, {@link #phase} (e.g. the backward) and
 * {@link #stop}; outside it the wrapper only forwards. An op's device time includes any wait of the device for the
 * host before it (a host-bound stretch shows its gaps on the ops that followed them); the totals compare the two.
 *
 * <p>Ops are the calls {@link OpStats} counts (a scope, a tensor or a list of tensors first). Not thread-safe, like
 * the engine.
 */
public final class OpTimes implements AutoCloseable {
    private final Backend target;
    private DeviceClock clock;
    private boolean active;
    private String phase = "";
    /** Per mark after the first: its phase and op. */
    private final List<String> phases = new ArrayList<>();
    private final List<String> ops = new ArrayList<>();
    private final List<Long> hostNanos = new ArrayList<>();

    /** @param target the backend whose device the clock reads (the one {@link #wrap} wraps, or below it) */
    public OpTimes(Backend target) {
        this.target = target;
    }

    /** One op name in one phase: calls, host milliseconds issuing them, device milliseconds. */
    public record Row(String phase, String op, long calls, double hostMillis, double deviceMillis) {
    }

    /** What {@link #stop} measured: rows by device time, and totals per phase (host, device milliseconds). */
    public record Table(List<Row> rows, Map<String, double[]> phaseTotals, Map<String, Long> phaseCalls) {
        /** Total device milliseconds. */
        public double deviceMillis() {
            return phaseTotals.values().stream().mapToDouble(v -> v[1]).sum();
        }

        /** The totals per phase, then the {@code top} rows by device time, as text lines. */
        public List<String> lines(int top) {
            List<String> out = new ArrayList<>();
            double device = deviceMillis();
            for (Map.Entry<String, double[]> e : phaseTotals.entrySet()) {
                out.add(String.format(Locale.ROOT, "  %s: %,d ops, host %.1f ms to issue, device %.1f ms", e.getKey(),
                        phaseCalls.get(e.getKey()), e.getValue()[0], e.getValue()[1]));
            }
            out.add("  | phase | op | calls | host ms | device ms | device % |");
            for (Row r : rows.subList(0, Math.min(top, rows.size()))) {
                out.add(String.format(Locale.ROOT, "  | %s | %s | %,d | %.1f | %.1f | %.1f %% |", r.phase(), r.op(),
                        r.calls(), r.hostMillis(), r.deviceMillis(), device > 0 ? 100 * r.deviceMillis() / device : 0));
            }
            return out;
        }
    }

    /** A backend that forwards every call to {@code backend} and, between {@link #start} and {@link #stop}, times it. */
    public Backend wrap(Backend backend) {
        return BackendProxies.proxy("timed " + backend, (method, args) -> {
            if (!active || !BackendProxies.isOp(args)) {
                return BackendProxies.forward(backend, method, args);
            }
            long t0 = System.nanoTime();
            Object result = BackendProxies.forward(backend, method, args);
            long host = System.nanoTime() - t0;
            clock.mark();
            phases.add(phase);
            ops.add(method.getName());
            hostNanos.add(host);
            return result;
        });
    }

    /** Starts timing (phase {@code phase}) after everything issued so far. */
    public void start(String phase) {
        if (clock == null) {
            clock = target.deviceClock();
        }
        clock.reset();
        phases.clear();
        ops.clear();
        hostNanos.clear();
        this.phase = phase;
        clock.mark();
        active = true;
    }

    /** The ops from now on belong to {@code phase}. */
    public void phase(String phase) {
        this.phase = phase;
    }

    /** Stops timing, waits for the device and returns the table. */
    public Table stop() {
        active = false;
        target.synchronize();
        double[] intervals = clock.intervalsMillis();
        Map<String, double[]> byOp = new LinkedHashMap<>();       // key "phase\top": calls, host ms, device ms
        Map<String, double[]> totals = new LinkedHashMap<>();
        Map<String, Long> calls = new LinkedHashMap<>();
        for (int i = 0; i < ops.size(); i++) {
            double host = hostNanos.get(i) / 1e6;
            double dev = i < intervals.length ? intervals[i] : 0;
            double[] r = byOp.computeIfAbsent(phases.get(i) + "\t" + ops.get(i), k -> new double[3]);
            r[0]++;
            r[1] += host;
            r[2] += dev;
            double[] t = totals.computeIfAbsent(phases.get(i), k -> new double[2]);
            t[0] += host;
            t[1] += dev;
            calls.merge(phases.get(i), 1L, Long::sum);
        }
        List<Row> rows = new ArrayList<>();
        for (Map.Entry<String, double[]> e : byOp.entrySet()) {
            String[] k = e.getKey().split("\t", 2);
            double[] v = e.getValue();
            rows.add(new Row(k[0], k[1], (long) v[0], v[1], v[2]));
        }
        rows.sort(Comparator.comparingDouble(Row::deviceMillis).reversed());
        return new Table(List.copyOf(rows), totals, calls);
    }

    @Override
    public void close() {
        if (clock != null) {
            clock.close();
            clock = null;
        }
    }
}
