//! `status.images`: what the runtime holds, largest first, at most `nodeStatusMaxImages`
//! (-1: all) and at most 5 names each (digests first), as upstream.

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::ContainerImage;

const MAX_NAMES_PER_IMAGE: usize = 5;

pub fn node_images(mut images: Vec<cri::Image>, max_images: i32) -> Vec<ContainerImage> {
    images.sort_by_key(|i| std::cmp::Reverse(i.size));
    let limit = if max_images < 0 {
        usize::MAX
    } else {
        max_images as usize
    };
    images
        .into_iter()
        .filter_map(|img| {
            let mut names: Vec<String> =
                img.repo_digests.into_iter().chain(img.repo_tags).collect();
            names.truncate(MAX_NAMES_PER_IMAGE);
            if names.is_empty() {
                return None;
            }
            Some(ContainerImage {
                names: Some(names),
                size_bytes: Some(img.size as i64),
            })
        })
        .take(limit)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(tag: &str, size: u64) -> cri::Image {
        cri::Image {
            id: format!("sha256:{tag}"),
            repo_tags: vec![tag.into()],
            repo_digests: vec![format!("{tag}@sha256:x")],
            size,
            ..Default::default()
        }
    }

    #[test]
    fn sorted_limited_named() {
        let out = node_images(vec![img("a", 1), img("b", 3), img("c", 2)], 2);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].names.as_ref().unwrap(),
            &vec!["b@sha256:x".to_string(), "b".to_string()]
        );
        assert_eq!(out[1].size_bytes, Some(2));
        assert_eq!(node_images(vec![img("a", 1)], -1).len(), 1);
        assert_eq!(node_images(vec![img("a", 1)], 0).len(), 0);
    }
}
