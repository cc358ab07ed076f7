package tenmin.cli;

import java.util.List;

import tenmin.core.Reporter;
import tenmin.train.TrainConfig;

/** Builds {@link TrainConfig}s from the reference trainer's flags for library tests (the CLI's own parser). */
public final class TrainTestConfigs {
    private TrainTestConfigs() {
    }

    /** Parses {@code args} as {@code tenmin train} would; without --seed the seed is 1234. */
    public static TrainConfig parse(List<String> args) {
        return parse(args, Reporter.SILENT);
    }

    /** {@link #parse(List)} reporting to {@code reporter}. */
    public static TrainConfig parse(List<String> args, Reporter reporter) {
        return TrainArgs.parse(args, reporter, () -> 1234L);
    }
}
