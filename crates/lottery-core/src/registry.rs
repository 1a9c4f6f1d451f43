//! Finding a plug-in (criterion, control, branch) by name in its registry, with an error that
//! lists the names there are. `-` and `_` are the same in names (`random-prune`).

use crate::error::{Error, Result};

/// The entry of `items` whose `name_of` is `name`; else an error for the setting `field`.
pub fn find<T: ?Sized + 'static>(
    items: &[&'static T],
    name: &str,
    field: &str,
    name_of: impl Fn(&T) -> &str,
) -> Result<&'static T> {
    let wanted = name.replace('-', "_");
    items
        .iter()
        .copied()
        .find(|&t| name_of(t) == wanted)
        .ok_or_else(|| {
            let known: Vec<&str> = items.iter().map(|&t| name_of(t)).collect();
            Error::config(
                field,
                format!("`{name}` is not one of {}", known.join(", ")),
            )
        })
}
