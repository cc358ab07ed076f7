package tenmin.core;

/**
 * A problem with the user's input (a file, an argument, a value): the command stops with exit code 2.
 *
 * <p>The message is one line saying what is wrong, where (file, tensor key, argument), expected versus
 * found, and a hint when there is one. Everything else that escapes a command is an internal error
 * (exit code 1).
 */
public class InputException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public InputException(String message) {
        super(message);
    }

    public InputException(String message, Throwable cause) {
        super(message, cause);
    }
}
