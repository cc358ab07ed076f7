package tenmin.cli;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;
import tenmin.core.InputException;

/**
 * The {@code tenmin} command: subcommands, exit codes and the one exception mapper.
 *
 * <p>Exit codes: 0 success, 2 bad usage or bad input ({@link InputException}), 1 internal failure.
 * Only {@link #main} calls {@link System#exit}; tests call {@link #run} in-process.
 */
@Command(name = "tenmin",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        description = "SDXL LoRA training and post-processing.",
        footerHeading = "%nExit codes:%n",
        footer = {"  0  success", "  2  bad usage or bad input", "  1  internal failure (rerun with --verbose)"})
public final class Main implements Callable<Integer> {
    /**
     * The subcommands, in the order {@code tenmin --help} lists them. Registered programmatically rather than in
     * {@code @Command(subcommands = ...)}: picocli builds a command's whole model (reflection over every option)
     * when it is added, so a command line naming one subcommand builds only that one; building all ten took
     * ~300 ms of a cold start ({@code tenmin chop} on a LoRA: 0.8 s, of which picocli 0.3 s).
     */
    private static final List<Class<?>> SUBCOMMANDS = List.of(
            CommandLine.HelpCommand.class,
            TrainCommand.class,
            ResizeCommand.class,
            ChopCommand.class,
            BlocksCommand.class,
            MergeCommand.class,
            InspectCommand.class,
            SampleCommand.class,
            AtlasCommand.class,
            BenchCommand.class);

    @Spec
    CommandSpec spec;

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** Runs one command line with the given streams and returns its exit code. */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        boolean verbose = false;
        for (String a : args) {
            if (a.equals("--verbose")) {
                verbose = true;
            }
        }
        Session session = new Session(out, err, verbose);
        SessionFactory factory = new SessionFactory(session);
        CommandLine cl = new CommandLine(new Main(), factory);
        boolean versionOnly = args.length == 1 && (args[0].equals("--version") || args[0].equals("-V"));
        Class<?> only = args.length > 0 ? subcommandNamed(args[0]) : null;
        for (Class<?> sub : versionOnly ? List.<Class<?>>of() : SUBCOMMANDS) {
            if (only == null || sub == only) {
                cl.addSubcommand(new CommandLine(sub, factory));
            }
        }
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        cl.setExecutionExceptionHandler(Main::handle);
        // bad usage (picocli's ParameterException) is exit code 2 too: a mapper replaces picocli's own default
        cl.setExitCodeExceptionMapper(t -> t instanceof InputException || t instanceof CommandLine.ParameterException ? 2 : 1);
        try {
            return cl.execute(args);
        } catch (OutOfMemoryError e) {
            err.printf(java.util.Locale.ROOT, "tenmin: error: out of memory (%s; the Java heap limit is %.1f GB): give"
                    + " Java more with TENMIN_JAVA_OPTS=-Xmx<N>g if the machine has it, or use smaller sizes%n",
                    e.getMessage(), Runtime.getRuntime().maxMemory() / 1e9);
            return 1;
        } finally {
            out.flush();
            err.flush();
        }
    }

    /** The subcommand class named {@code name}, or null (then all are registered: help, suggestions, errors). */
    private static Class<?> subcommandNamed(String name) {
        for (Class<?> sub : SUBCOMMANDS) {
            if (sub != CommandLine.HelpCommand.class && sub.getAnnotation(Command.class).name().equals(name)) {
                return sub;
            }
        }
        return null;
    }

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getOut());
        return 0;
    }

    private static int handle(Exception ex, CommandLine cl, CommandLine.ParseResult parsed) {
        PrintWriter err = cl.getErr();
        boolean verbose = parsed.hasMatchedOption("--verbose")
                || (parsed.subcommand() != null && parsed.subcommand().hasMatchedOption("--verbose"));
        String where = cl.getCommandSpec().qualifiedName();
        Throwable cause = unwrapInput(ex);
        if (cause instanceof InputException input) {
            err.println(where + ": error: " + oneLine(input.getMessage()));
            if (verbose) {
                input.printStackTrace(err);
            }
            err.flush();
            return 2;
        }
        err.println(where + ": internal error: " + ex + (verbose ? "" : " (rerun with --verbose and report the output)"));
        if (verbose) {
            ex.printStackTrace(err);
        }
        err.flush();
        return 1;
    }

    private static Throwable unwrapInput(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof InputException) {
                return c;
            }
        }
        return t;
    }

    static String oneLine(String s) {
        return s == null ? "(no message)" : s.replace('\n', ' ').replace('\r', ' ');
    }

    /** Prints the implementation version from the jar manifest (or "dev"). */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"tenmin " + (v == null ? "dev" : v) + " (Java " + Runtime.version() + ")"};
        }
    }

    /** Hands the per-run {@link Session} to commands that declare a constructor taking it. */
    private record SessionFactory(Session session) implements CommandLine.IFactory {
        @Override
        public <K> K create(Class<K> cls) throws Exception {
            try {
                return cls.getDeclaredConstructor(Session.class).newInstance(session);
            } catch (NoSuchMethodException e) {
                return CommandLine.defaultFactory().create(cls);
            }
        }
    }
}
