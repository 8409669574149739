//! The network on one of candle's devices (a GPU, with the `cuda` cargo feature), through
//! candle's own operations only.
//!
//! The same weights and arithmetic as `net.rs` (BERT post-LN, exact GELU, mean pooling), but
//! where `net.rs` uses khabar's CPU kernels, this uses the operations every candle device has:
//! `matmul`, `candle_nn::ops::layer_norm`, `softmax_last_dim`, `gelu_erf`. The embedding rows
//! are summed on the CPU (the word table stays in Q4_0 there) and the batch goes to the device;
//! the last layer's states come back for pooling. The linear layers are copied to the device
//! once, transposed to `[in, out]`, in f32.
//!
//! `KHABAR_DEVICE` chooses the device ([`device_from`]): on the CPU this path gives the
//! kernels' vectors (to rounding; the tests check it) more slowly, so the CPU keeps the kernels.

use candle_core::{Device, Tensor};

use super::net::{pool, split_heads, Layer, Linear, Net, Norm};
use crate::error::{Error, Result};

type CResult<T> = candle_core::Result<T>;

/// The environment variable that chooses where the encoder runs.
pub const DEVICE_VARIABLE: &str = "KHABAR_DEVICE";

/// The device `value` (`KHABAR_DEVICE`'s value) names for the encoder, or `None` for khabar's
/// own CPU kernels: `cpu`; `cuda` or `cuda:N` (GPU number N, 0 by default), which needs a
/// build with the `cuda` feature and a GPU. Unset or empty: the first GPU in a build with the
/// `cuda` feature when one is there, else the CPU.
pub(super) fn device_from(value: Option<&str>) -> Result<Option<Device>> {
    let value = value.map(str::trim).unwrap_or("");
    let cuda = |ordinal: usize| -> Result<Option<Device>> {
        Device::new_cuda(ordinal).map(Some).map_err(|e| {
            let why = if cfg!(feature = "cuda") {
                format!("no CUDA GPU {ordinal} could be opened: {e}")
            } else {
                "this khabar was built without its `cuda` feature \
                 (cargo build --release --features cuda, on a machine with the CUDA toolkit)"
                    .to_string()
            };
            Error::Usage(format!("{DEVICE_VARIABLE}={value}: {why}"))
        })
    };
    match value {
        "" if cfg!(feature = "cuda") => match Device::cuda_if_available(0) {
            Ok(d) if d.is_cuda() => Ok(Some(d)),
            _ => Ok(None),
        },
        "" | "cpu" => Ok(None),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => cuda(n),
            _ => Err(Error::Usage(format!(
                "{DEVICE_VARIABLE}={other}: expected cpu, cuda or cuda:N (a GPU's number)"
            ))),
        },
    }
}

/// `x W + b`, `W` held as `[in, out]`.
#[derive(Debug, Clone)]
struct DeviceLinear {
    w: Tensor,
    b: Tensor,
}

impl DeviceLinear {
    fn new(l: &Linear, device: &Device) -> CResult<Self> {
        Ok(DeviceLinear {
            w: l.w.t()?.contiguous()?.to_device(device)?,
            b: l.b.to_device(device)?,
        })
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        x.matmul(&self.w)?.broadcast_add(&self.b)
    }
}

#[derive(Debug, Clone)]
struct DeviceNorm {
    g: Tensor,
    b: Tensor,
    eps: f32,
}

impl DeviceNorm {
    fn new(n: &Norm, device: &Device) -> CResult<Self> {
        Ok(DeviceNorm {
            g: n.g.to_device(device)?,
            b: n.b.to_device(device)?,
            eps: n.eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        candle_nn::ops::layer_norm(x, &self.g, &self.b, self.eps)
    }
}

#[derive(Debug, Clone)]
struct DeviceLayer {
    qkv: DeviceLinear,
    output: DeviceLinear,
    attention_norm: DeviceNorm,
    up: DeviceLinear,
    down: DeviceLinear,
    output_norm: DeviceNorm,
}

impl DeviceLayer {
    fn new(l: &Layer, device: &Device) -> CResult<Self> {
        Ok(DeviceLayer {
            qkv: DeviceLinear::new(&l.qkv, device)?,
            output: DeviceLinear::new(&l.output, device)?,
            attention_norm: DeviceNorm::new(&l.attention_norm, device)?,
            up: DeviceLinear::new(&l.up, device)?,
            down: DeviceLinear::new(&l.down, device)?,
            output_norm: DeviceNorm::new(&l.output_norm, device)?,
        })
    }

    /// `x`: `[b * l, d]`; `mask`: `[b, 1, 1, l]`, 0 on real keys and -∞ on padding.
    fn forward(
        &self,
        x: &Tensor,
        (b, l): (usize, usize),
        mask: &Tensor,
        heads: usize,
    ) -> CResult<Tensor> {
        let d = x.dim(1)?;
        let dh = d / heads;
        let (q, k, v) = split_heads(&self.qkv.forward(x)?, b, l, heads)?;
        // [b, h, l, l], padded keys at -∞.
        let scores = (q.matmul(&k.t()?.contiguous()?)? * (1.0 / (dh as f64).sqrt()))?;
        let scores = scores.broadcast_add(mask)?;
        let p = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = p
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * l, d))?;
        let x = self
            .attention_norm
            .forward(&(x + self.output.forward(&ctx)?)?)?;
        let h = self.up.forward(&x)?.gelu_erf()?;
        self.output_norm.forward(&(&x + self.down.forward(&h)?)?)
    }
}

/// The network's weights on a device (all but the word table, which stays with [`Net`]).
#[derive(Debug, Clone)]
pub(super) struct DeviceNet {
    device: Device,
    norm: DeviceNorm,
    layers: Vec<DeviceLayer>,
}

impl DeviceNet {
    /// `net`'s layers copied to `device`.
    pub(super) fn new(net: &Net, device: &Device) -> CResult<Self> {
        Ok(DeviceNet {
            device: device.clone(),
            norm: DeviceNorm::new(&net.norm, device)?,
            layers: net
                .layers
                .iter()
                .map(|l| DeviceLayer::new(l, device))
                .collect::<CResult<_>>()?,
        })
    }

    /// The device, for logs and errors.
    pub(super) fn device(&self) -> &Device {
        &self.device
    }

    /// [`Net::forward`] on the device: the same arguments, the same vectors (to rounding).
    pub(super) fn forward(
        &self,
        net: &Net,
        ids: &[u32],
        lens: &[usize],
        width: usize,
    ) -> CResult<Vec<Vec<f32>>> {
        let (b, d) = (lens.len(), net.hidden);
        let x = net.embeddings(ids, lens, width)?;
        let mut x = self
            .norm
            .forward(&Tensor::from_vec(x, (b * width, d), &self.device)?)?;
        let mask: Vec<f32> = lens
            .iter()
            .flat_map(|&n| (0..width).map(move |j| if j < n { 0.0 } else { f32::NEG_INFINITY }))
            .collect();
        let mask = Tensor::from_vec(mask, (b, 1, 1, width), &self.device)?;
        for layer in &self.layers {
            x = layer.forward(&x, (b, width), &mask, net.heads)?;
        }
        let states = x.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(pool(&states, lens, width, d))
    }
}
