//! Feature programs: the preprocessing an ONNX-ML graph does before its model (scaling, imputing,
//! one-hot encoding...), as a flat list of steps over a scratch buffer.

/// A placeholder until the ONNX importer lands: a program that copies its inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureProgram {
    pub steps: Vec<()>,
}

impl FeatureProgram {
    /// Checks the program reads `num_inputs` inputs and writes `num_features` features.
    pub fn validate(&self, num_inputs: usize, num_features: usize) -> Result<(), String> {
        if num_inputs != num_features {
            return Err("feature program is not implemented".into());
        }
        Ok(())
    }

    /// Length of the scratch buffer [`FeatureProgram::apply`] needs.
    pub fn scratch_len(&self) -> usize {
        0
    }

    /// Computes the body's features from one row of inputs, without allocating.
    pub fn apply(&self, inputs: &[f64], _scratch: &mut [f64], features: &mut [f64]) {
        features.copy_from_slice(inputs);
    }
}
