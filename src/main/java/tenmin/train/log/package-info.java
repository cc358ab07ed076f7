/**
 * Training logs: the TensorBoard run folder rule and tags of the reference, and kohya's running-loss
 * record. Imports {@code tenmin.train}, {@code tenmin.formats}, {@code tenmin.core}.
 */
package tenmin.train.log;
