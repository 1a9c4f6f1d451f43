//! The layer plans of the plain convolutional nets, by name: the LTH paper's Conv-2/4/6 and
//! OpenLTH's CIFAR VGGs. The training library builds its burn modules from these, and a state
//! dict of one of them compacts from its name alone ([`crate::dict::conv_net`]), so the plan is
//! written once.

use crate::model::Pool;

/// One 3×3 convolution (padding 1) of a plan: its output channels and the pooling after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvStep {
    pub channels: usize,
    pub pool: Pool,
}

/// A plan by architecture name, and whether a batch norm follows each convolution (VGG); `None`
/// for names that are not plain conv nets.
pub fn conv_plan(name: &str) -> Option<(Vec<ConvStep>, bool)> {
    match name {
        "conv2" => Some((lth_conv_plan(1), false)),
        "conv4" => Some((lth_conv_plan(2), false)),
        "conv6" => Some((lth_conv_plan(3), false)),
        _ => Some((vgg_plan(name.strip_prefix("vgg")?.parse().ok()?)?, true)),
    }
}

/// The LTH paper's Conv-2/4/6: pairs of 3×3 convolutions (64, 128, 256 channels), a max-pool
/// after each pair, then fully connected 256-256-classes.
pub fn lth_conv_plan(pairs: usize) -> Vec<ConvStep> {
    [64, 128, 256][..pairs.min(3)]
        .iter()
        .flat_map(|&c| [Pool::None, Pool::Max].map(|pool| ConvStep { channels: c, pool }))
        .collect()
}

/// CIFAR VGG-11/13/16/19 as in OpenLTH: the last stage ends in a 2×2 average pool instead of a
/// max-pool, leaving 512 features for a single linear classifier.
pub fn vgg_plan(depth: usize) -> Option<Vec<ConvStep>> {
    let per_stage: [usize; 5] = match depth {
        11 => [1, 1, 2, 2, 2],
        13 => [2, 2, 2, 2, 2],
        16 => [2, 2, 3, 3, 3],
        19 => [2, 2, 4, 4, 4],
        _ => return None,
    };
    let widths = [64, 128, 256, 512, 512];
    let mut plan = Vec::new();
    for (stage, (&n, &c)) in per_stage.iter().zip(&widths).enumerate() {
        for i in 0..n {
            let pool = match (i + 1 == n, stage == 4) {
                (false, _) => Pool::None,
                (true, false) => Pool::Max,
                (true, true) => Pool::Avg,
            };
            plan.push(ConvStep { channels: c, pool });
        }
    }
    Some(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_by_name() {
        let (conv4, bn) = conv_plan("conv4").unwrap();
        assert!(!bn);
        let pools: Vec<Pool> = conv4.iter().map(|s| s.pool).collect();
        assert_eq!(pools, [Pool::None, Pool::Max, Pool::None, Pool::Max]);
        let (vgg16, bn) = conv_plan("vgg16").unwrap();
        assert!(bn);
        assert_eq!(vgg16.len(), 13);
        assert_eq!(vgg16.last().unwrap().pool, Pool::Avg);
        assert_eq!(vgg16.iter().filter(|s| s.pool == Pool::Max).count(), 4);
        for bad in ["conv3", "vgg12", "vggx", "mlp"] {
            assert!(conv_plan(bad).is_none(), "{bad}");
        }
    }
}
