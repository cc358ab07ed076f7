/**
 * The command line (picocli only here): options and TOML merged into one typed config record, the
 * library call, and the exit code. One exception mapper ({@link tenmin.cli.Main}) turns
 * {@link tenmin.core.InputException} into exit code 2 and anything else into 1.
 * Only this package imports picocli.
 */
package tenmin.cli;
