/**
 * The bottom layer every other package may use: the user-error exception ({@link tenmin.core.InputException},
 * exit code 2) and the {@link tenmin.core.Reporter} through which library code logs and shows progress.
 * Imports nothing of tenmin.
 */
package tenmin.core;
