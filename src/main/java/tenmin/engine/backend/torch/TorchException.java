package tenmin.engine.backend.torch;

/**
 * A libtorch call returned an error code. The message names the C function or ATen operator and the
 * shapes and dtypes of its tensor arguments; libtorch itself prints its reason (the C++ exception text)
 * on the process's standard error just before.
 */
public final class TorchException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public TorchException(String message) {
        super(message);
    }

    public TorchException(String message, Throwable cause) {
        super(message, cause);
    }
}
