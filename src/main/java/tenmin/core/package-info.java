/**
 * The bottom layer every other package may use: the user-error exception ({@link tenmin.core.InputException},
 * exit code 2), the {@link tenmin.core.Reporter} through which library code logs and shows progress, Python
 * number formatting ({@link tenmin.core.PyFormat}) and the Mersenne Twister that numpy's and PyTorch's
 * generators share ({@link tenmin.core.MersenneTwister}). Imports nothing of tenmin.
 */
package tenmin.core;
