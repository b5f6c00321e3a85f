"""Input data: tf.data pipelines (`pipeline`) and the synthetic default data set (`synthetic`)."""
