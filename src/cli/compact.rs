//! `khabar compact`: a bow model (or a hybrid's bow part) made smaller.

use khabar::model::Model;
use khabar::{CompactOptions, Error, Result};

use super::args::CompactArgs;
use super::{bundle_bytes, check_out_dir, load_model};

pub fn compact(a: CompactArgs) -> Result<()> {
    let clf = load_model(&Some(a.model.clone()), &a.encoder, None)?;
    if !matches!(clf.model(), Model::Bow(_) | Model::Hybrid(_)) {
        return Err(Error::Usage(format!(
            "{}: compact applies to bow models and to a hybrid's bow part; this one is a {}",
            a.model.display(),
            clf.config().architecture.name()
        )));
    }
    check_out_dir(&a.out)?;
    let small = clf.compact(CompactOptions {
        fold: a.fold,
        half: a.half,
        max_ngrams: a.max_ngrams,
    });
    small.save(&a.out)?;
    eprintln!(
        "{} -> {}: {:.1} MB -> {:.1} MB",
        a.model.display(),
        a.out.display(),
        bundle_bytes(&a.model) as f64 / 1e6,
        bundle_bytes(&a.out) as f64 / 1e6
    );
    Ok(())
}
