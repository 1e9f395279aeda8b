"""`FusedAdam`: Keras's Adam, each variable's update in one TensorFlow kernel.

Keras 3's `Adam.update_step` updates each variable with about a dozen
separate ops (subtract, multiply, square, sqrt, divide and three
assignments), each a pass over the variable, its two moments and the
gradient. TensorFlow's `ResourceApplyAdam` kernel computes the same update
in one pass:

    m <- m + (g - m)(1 - beta_1)
    v <- v + (g^2 - v)(1 - beta_2)
    w <- w - lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)

which is Keras's Adam term for term (the same epsilon outside the square
root, the same bias correction folded into the learning rate), so a run
resumed with either optimizer continues with the same state: the moment
variables are Keras's own. The kernel forms 1 - beta in the variable's
dtype (1 - 0.999 is 1.0000467e-3 in float32), so the moments differ from
Keras's by about 5e-5 relative: float rounding, not a different update.
`amsgrad` and sparse (`IndexedSlices`)
gradients fall back to Keras's update.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfmix")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` with a fused update kernel (module docstring).

    Takes Adam's arguments and saves, loads and resumes as Adam does.

    Example:
    >>> model.compile(optimizer=FusedAdam(1e-3))  # doctest: +SKIP
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        handle = variable.handle if hasattr(variable, "handle") else variable.value.handle
        return tf.raw_ops.ResourceApplyAdam(
            var=handle, m=m.handle, v=v.handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype), epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype), use_locking=False, use_nesterov=False)
