//! The activation functions an A1111 hypernetwork may name in `activation_func`.
//!
//! A1111 accepts `linear` (or none), its own short list (`relu`, `leakyrelu`, `elu`,
//! `swish` — which is torch's *Hardswish*, `tanh`, `sigmoid`) and the lower-cased class
//! name of any torch activation module built with its default arguments. Easel supports
//! every such module that maps one value to one value; the rest are refused by name
//! (`glu` halves the width, `softmax`/`softmin`/`logsoftmax`/`softmax2d` normalise over the
//! batch dimension of a 3-D input, `threshold`/`multiheadattention` need arguments).

use easel_core::{Backend, ElementwiseFn, Error, Result};

/// One element-wise activation, with torch's default constructor arguments.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    /// Negative slope 0.01.
    LeakyRelu,
    /// Exact (erf) GELU.
    Gelu,
    Silu,
    /// Evaluation mode: a fixed negative slope, the mean of the bounds 1/8 and 1/3.
    Rrelu,
    /// Learned negative slope (one parameter, `linear.N.weight` of shape `[1]`).
    Prelu(f32),
    /// One of the backend's other element-wise functions (ELU and CELU, both with α = 1,
    /// are one function; A1111's "swish" is torch's Hardswish).
    Elementwise(ElementwiseFn),
}

/// Names accepted in `activation_func`, as A1111 spells them.
pub const SUPPORTED_NAMES: &[&str] = &[
    "linear",
    "relu",
    "leakyrelu",
    "elu",
    "swish",
    "hardswish",
    "tanh",
    "sigmoid",
    "gelu",
    "silu",
    "mish",
    "celu",
    "selu",
    "relu6",
    "hardtanh",
    "hardsigmoid",
    "softplus",
    "softsign",
    "tanhshrink",
    "logsigmoid",
    "hardshrink",
    "softshrink",
    "rrelu",
    "prelu",
];

/// What an `activation_func` name asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActivationKind {
    /// No activation module at all (`None` or `"linear"`): it takes no `linear.N` index.
    None,
    /// A parameter-free module.
    Fixed(Activation),
    /// PReLU: a module whose slope is loaded from the file.
    Prelu,
}

impl ActivationKind {
    /// Parses an `activation_func` value (`None` when the file has none). `file` names the
    /// file in the error for a name Easel does not support.
    pub fn parse(name: Option<&str>, file: &str) -> Result<Self> {
        use Activation::*;
        use ElementwiseFn as F;
        let Some(name) = name else {
            return Ok(ActivationKind::None);
        };
        let fixed = match name {
            "linear" => return Ok(ActivationKind::None),
            "prelu" => return Ok(ActivationKind::Prelu),
            "relu" => Relu,
            "leakyrelu" => LeakyRelu,
            "gelu" => Gelu,
            "silu" => Silu,
            "elu" | "celu" => Elementwise(F::Elu),
            "selu" => Elementwise(F::Selu),
            "swish" | "hardswish" => Elementwise(F::Hardswish),
            "tanh" => Elementwise(F::Tanh),
            "sigmoid" => Elementwise(F::Sigmoid),
            "mish" => Elementwise(F::Mish),
            "relu6" => Elementwise(F::Relu6),
            "hardtanh" => Elementwise(F::Hardtanh),
            "hardsigmoid" => Elementwise(F::Hardsigmoid),
            "softplus" => Elementwise(F::Softplus),
            "softsign" => Elementwise(F::Softsign),
            "tanhshrink" => Elementwise(F::Tanhshrink),
            "logsigmoid" => Elementwise(F::LogSigmoid),
            "hardshrink" => Elementwise(F::Hardshrink),
            "softshrink" => Elementwise(F::Softshrink),
            "rrelu" => Rrelu,
            other => {
                return Err(Error::format(
                    file,
                    format!(
                        "hypernetwork activation_func `{other}` is not supported (supported: {})",
                        SUPPORTED_NAMES.join(", ")
                    ),
                ))
            }
        };
        Ok(ActivationKind::Fixed(fixed))
    }
}

const RRELU_SLOPE: f32 = (1.0 / 8.0 + 1.0 / 3.0) / 2.0;

impl Activation {
    /// The backend's element-wise function this activation is, where it is one.
    pub fn elementwise_fn(self) -> Option<ElementwiseFn> {
        match self {
            Activation::Elementwise(f) => Some(f),
            _ => None,
        }
    }

    /// The slope below zero of the ReLU family, which is the backend's leaky ReLU.
    fn negative_slope(self) -> Option<f32> {
        match self {
            Activation::Relu => Some(0.0),
            Activation::LeakyRelu => Some(0.01),
            Activation::Rrelu => Some(RRELU_SLOPE),
            Activation::Prelu(a) => Some(a),
            _ => None,
        }
    }

    /// The function on one value (f32 throughout, as torch computes in f32).
    pub fn apply_scalar(self, x: f32) -> f32 {
        if let Some(f) = self.elementwise_fn() {
            return f.apply(x);
        }
        if let Some(slope) = self.negative_slope() {
            return if x >= 0.0 { x } else { slope * x };
        }
        match self {
            Activation::Gelu => 0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2)),
            Activation::Silu => x / (1.0 + (-x).exp()),
            _ => x,
        }
    }

    /// Applies the activation on the backend, every one with the backend's own kernels
    /// (SiLU, GELU, leaky ReLU for the ReLU family, [`Backend::elementwise`] for the rest),
    /// so hypernetworks with any activation also run where tensors cannot be read back
    /// synchronously (the browser).
    pub fn apply<B: Backend>(self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        if let Some(f) = self.elementwise_fn() {
            return b.elementwise(x, f);
        }
        if let Some(slope) = self.negative_slope() {
            return b.leaky_relu(x, slope);
        }
        match self {
            Activation::Silu => b.silu(x),
            Activation::Gelu => b.gelu(x),
            _ => Ok(x.clone()),
        }
    }
}

/// The error function, for the host-side GELU (tensors use the backend's GELU). Computed
/// in f64 from the complementary error function's Chebyshev fit published in Numerical
/// Recipes (fractional error below 1.2e-7 everywhere).
fn erf(x: f32) -> f32 {
    let z = x.abs() as f64;
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    let erf = 1.0 - r;
    (if x >= 0.0 { erf } else { -erf }) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_as_a1111_reads_them() {
        assert_eq!(
            ActivationKind::parse(None, "f").unwrap(),
            ActivationKind::None
        );
        assert_eq!(
            ActivationKind::parse(Some("linear"), "f").unwrap(),
            ActivationKind::None
        );
        assert_eq!(
            ActivationKind::parse(Some("swish"), "f").unwrap(),
            ActivationKind::Fixed(Activation::Elementwise(ElementwiseFn::Hardswish))
        );
        for name in SUPPORTED_NAMES {
            assert!(ActivationKind::parse(Some(name), "f").is_ok(), "{name}");
        }
        let err = ActivationKind::parse(Some("softmax"), "hn.pt")
            .unwrap_err()
            .to_string();
        assert!(err.contains("hn.pt") && err.contains("`softmax`"), "{err}");
    }

    #[test]
    fn scalar_values_match_their_definitions() {
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        assert!(close(
            Activation::Elementwise(ElementwiseFn::Hardswish).apply_scalar(1.0),
            1.0 * 4.0 / 6.0
        ));
        assert!(close(
            Activation::Elementwise(ElementwiseFn::Hardswish).apply_scalar(-4.0),
            0.0
        ));
        assert!(close(Activation::Gelu.apply_scalar(1.0), 0.841_344_7));
        assert!(close(Activation::Gelu.apply_scalar(-0.5), -0.154_268_5));
        assert!(close(
            Activation::Elementwise(ElementwiseFn::Selu).apply_scalar(-1.0),
            -1.111_330_7
        ));
        assert!(close(
            Activation::Elementwise(ElementwiseFn::Mish).apply_scalar(1.0),
            0.865_098_4
        ));
        assert!(close(
            Activation::Elementwise(ElementwiseFn::LogSigmoid).apply_scalar(0.0),
            -std::f32::consts::LN_2
        ));
        assert!(close(Activation::Rrelu.apply_scalar(-1.0), -11.0 / 48.0));
    }
}
