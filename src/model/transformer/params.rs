//! Where the network's tensors come from: fresh, randomly initialized variables (training) or
//! tensors read from a bundle (loading).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};

use crate::rng::SplitMix64;

/// How a fresh parameter is initialized.
#[derive(Clone, Copy)]
pub(super) enum Init {
    /// Normal with this standard deviation.
    Normal(f32),
    /// Uniform in `[-bound, bound]`.
    Uniform(f32),
    Ones,
    Zeros,
}

/// Where the network's tensors come from: fresh variables (training) or a bundle (loading).
pub(super) trait Source {
    /// The tensor called `name`, of shape `shape`. `decay`: whether weight decay applies.
    fn get(
        &mut self,
        name: &str,
        shape: &[usize],
        init: Init,
        decay: bool,
    ) -> std::result::Result<Tensor, String>;
}

/// A trainable dense parameter and its AdamW state.
pub(super) struct Param {
    pub(super) name: String,
    pub(super) var: Var,
    pub(super) decay: bool,
    pub(super) m: Vec<f32>,
    pub(super) v: Vec<f32>,
}

/// Fresh, randomly initialized variables.
pub(super) struct Fresh {
    pub(super) rng: SplitMix64,
    pub(super) dtype: DType,
    pub(super) params: Vec<Param>,
}

/// `n` initial values, drawn as `init` says.
pub(super) fn init_values(rng: &mut SplitMix64, n: usize, init: Init) -> Vec<f32> {
    match init {
        Init::Normal(std) => (0..n).map(|_| rng.next_normal() * std).collect(),
        Init::Uniform(b) => (0..n).map(|_| (rng.next_f32() * 2.0 - 1.0) * b).collect(),
        Init::Ones => vec![1.0; n],
        Init::Zeros => vec![0.0; n],
    }
}

impl Source for Fresh {
    fn get(
        &mut self,
        name: &str,
        shape: &[usize],
        init: Init,
        decay: bool,
    ) -> std::result::Result<Tensor, String> {
        let n: usize = shape.iter().product();
        let values = init_values(&mut self.rng, n, init);
        let var = Tensor::from_vec(values, shape, &Device::Cpu)
            .and_then(|t| t.to_dtype(self.dtype))
            .and_then(|t| Var::from_tensor(&t))
            .map_err(|e| e.to_string())?;
        let t = var.as_tensor().clone();
        self.params.push(Param {
            name: name.to_string(),
            var,
            decay,
            m: vec![0.0; n],
            v: vec![0.0; n],
        });
        Ok(t)
    }
}

/// Tensors read from a bundle, checked for name, type, shape and finiteness.
pub(super) struct Loaded<'a> {
    pub(super) tensors: &'a HashMap<String, Tensor>,
    /// The names read, in order.
    pub(super) used: Vec<String>,
}

impl Source for Loaded<'_> {
    fn get(
        &mut self,
        name: &str,
        shape: &[usize],
        _init: Init,
        _decay: bool,
    ) -> std::result::Result<Tensor, String> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| format!("tensor '{name}' is missing"))?;
        if t.dtype() != DType::F32 {
            return Err(format!(
                "tensor '{name}' has type {:?}, expected F32",
                t.dtype()
            ));
        }
        if t.dims() != shape {
            return Err(format!(
                "tensor '{name}' has shape {:?}, expected {shape:?}",
                t.dims()
            ));
        }
        let finite = t
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| e.to_string())?
            .iter()
            .all(|x| x.is_finite());
        if !finite {
            return Err(format!("tensor '{name}' holds NaN or infinite values"));
        }
        self.used.push(name.to_string());
        Ok(t.clone())
    }
}
