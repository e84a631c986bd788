//! Validating many items on every core: a sync batch, or a piece of a CSV file.

use std::sync::OnceLock;

/// Fewer items than this per thread cost more to hand over than to validate.
const MIN_PART: usize = 256;

/// Validates `items` in consecutive parts, one per core (the first on the calling
/// thread), and answers what passed and what did not, each in the items' order.
/// `validate` gets each item with its index in `items`, for its error messages.
pub fn validate_in_parallel<I, T, E>(
    items: Vec<I>,
    validate: impl Fn(I, usize) -> Result<T, E> + Sync,
) -> (Vec<T>, Vec<E>)
where
    I: Send,
    T: Send,
    E: Send,
{
    let total = items.len();
    let part = total.div_ceil(cores()).max(MIN_PART);
    // Split from the end, so each item moves once; `first` keeps the first part.
    let mut first = items;
    let mut rest = Vec::new();
    while first.len() > part {
        let start = (first.len() - 1) / part * part;
        rest.push((start, first.split_off(start)));
    }
    let validate = &validate;
    let parts = std::thread::scope(|scope| {
        let workers: Vec<_> = rest
            .into_iter()
            .rev()
            .map(|(start, items)| scope.spawn(move || validate_part(items, start, validate)))
            .collect();
        let mut parts = vec![validate_part(first, 0, validate)];
        for worker in workers {
            match worker.join() {
                Ok(part) => parts.push(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        parts
    });
    let mut passed = Vec::with_capacity(total);
    let mut failed = Vec::new();
    for (mut part_passed, mut part_failed) in parts {
        passed.append(&mut part_passed);
        failed.append(&mut part_failed);
    }
    (passed, failed)
}

/// Validates consecutive items, the first of which has index `start`.
fn validate_part<I, T, E>(
    items: Vec<I>,
    start: usize,
    validate: &impl Fn(I, usize) -> Result<T, E>,
) -> (Vec<T>, Vec<E>) {
    let mut passed = Vec::with_capacity(items.len());
    let mut failed = Vec::new();
    for (offset, item) in items.into_iter().enumerate() {
        match validate(item, start + offset) {
            Ok(valid) => passed.push(valid),
            Err(problem) => failed.push(problem),
        }
    }
    (passed, failed)
}

/// The cores to validate on, asked once (on Linux the answer reads cgroup files).
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_validated_in_parts_keep_their_order_and_indexes() {
        for len in [0, 1, MIN_PART, MIN_PART + 1, 10 * MIN_PART + 7] {
            let items: Vec<usize> = (0..len).map(|i| i * 10).collect();
            let (passed, failed) = validate_in_parallel(items, |item, index| {
                assert_eq!(item, index * 10, "each item comes with its own index");
                if index % 97 == 3 {
                    Err(format!("item {index}"))
                } else {
                    Ok(item)
                }
            });
            let expected_passed: Vec<usize> =
                (0..len).filter(|i| i % 97 != 3).map(|i| i * 10).collect();
            let expected_failed: Vec<String> = (0..len)
                .filter(|i| i % 97 == 3)
                .map(|i| format!("item {i}"))
                .collect();
            assert_eq!(passed, expected_passed, "{len} items");
            assert_eq!(failed, expected_failed, "{len} items");
        }
    }

    #[test]
    fn a_panic_while_validating_reaches_the_caller() {
        let items: Vec<usize> = (0..4 * MIN_PART).collect();
        let caught = std::panic::catch_unwind(|| {
            validate_in_parallel(items, |item, _| {
                assert_ne!(item, 3 * MIN_PART + 1, "boom");
                Ok::<_, ()>(item)
            })
        });
        assert!(caught.is_err());
    }
}
