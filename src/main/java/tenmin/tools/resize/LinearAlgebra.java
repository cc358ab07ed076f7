package tenmin.tools.resize;

/** Which linear algebra a resize runs on (the command line's {@code --linalg}). */
public enum LinearAlgebra {
    /** OpenBLAS when one is found, else resize's own Java kernels (the default). */
    AUTO,
    /** OpenBLAS, or an error naming why none was found. */
    OPENBLAS,
    /** Resize's own Java kernels (Vector API), no native code. */
    JAVA
}
