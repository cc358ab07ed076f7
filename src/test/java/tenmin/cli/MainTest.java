package tenmin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import tenmin.testing.Cli;

/**
 * The top-level command: {@link Main} registers only the subcommand a command line names (to start faster),
 * so the paths that need all of them are checked here: the command list, {@code help NAME}, an unknown name.
 */
class MainTest {
    private static final String[] NAMES = {"train", "resize", "chop", "blocks", "merge", "inspect", "sample", "atlas",
            "bench"};

    @Test
    void helpListsEveryCommandInOrder() {
        for (String[] args : new String[][] {{"--help"}, {}, {"help"}}) {
            Cli.Run r = Cli.run(args);
            assertEquals(0, r.exit(), r.toString());
            int at = -1;
            for (String name : NAMES) {
                int i = r.out().indexOf("\n  " + name + " ");
                assertTrue(i > at, name + " listed after the one before it:\n" + r);
                at = i;
            }
        }
    }

    @Test
    void helpOfOneCommandAndTheCommandsOwnHelpAgree() {
        Cli.Run viaHelp = Cli.run("help", "chop");
        Cli.Run own = Cli.run("chop", "--help");
        assertEquals(0, viaHelp.exit(), viaHelp.toString());
        assertEquals(0, own.exit(), own.toString());
        assertTrue(own.out().startsWith("Usage: tenmin chop "), own.toString());
        assertEquals(own.out(), viaHelp.out());
    }

    @Test
    void anUnknownCommandIsBadUsageAndSuggestsTheNearOne() {
        Cli.Run r = Cli.run("chopp", "x.safetensors");
        assertEquals(2, r.exit(), r.toString());
        assertTrue(r.err().contains("chopp"), r.toString());
        assertTrue(r.err().contains("chop"), r.toString());
    }

    @Test
    void versionNamesTheProgram() {
        Cli.Run r = Cli.run("--version");
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.out().startsWith("tenmin "), r.toString());
    }
}
