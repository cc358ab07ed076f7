/**
 * The shape-only backend ({@link tenmin.engine.backend.meta.MetaBackend}): runs model code without computing
 * or storing values, to plan a step's memory and count its ops and FLOPs at full size on any machine.
 *
 * <p>Imports only {@code tenmin.engine.api}; never autograd, another backend, models or anything above.
 */
package tenmin.engine.backend.meta;
