//! `spec.volumes`: names, exactly one source each, hostPath essentials.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{HostPathVolumeSource, Volume};

use super::field::{FieldError, Path};
use super::names;

/// The JSON names of the sources set on a volume, in field order.
pub fn volume_source_names(v: &Volume) -> Vec<&'static str> {
    let set = [
        ("awsElasticBlockStore", v.aws_elastic_block_store.is_some()),
        ("azureDisk", v.azure_disk.is_some()),
        ("azureFile", v.azure_file.is_some()),
        ("cephfs", v.cephfs.is_some()),
        ("cinder", v.cinder.is_some()),
        ("configMap", v.config_map.is_some()),
        ("csi", v.csi.is_some()),
        ("downwardAPI", v.downward_api.is_some()),
        ("emptyDir", v.empty_dir.is_some()),
        ("ephemeral", v.ephemeral.is_some()),
        ("fc", v.fc.is_some()),
        ("flexVolume", v.flex_volume.is_some()),
        ("flocker", v.flocker.is_some()),
        ("gcePersistentDisk", v.gce_persistent_disk.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("hostPath", v.host_path.is_some()),
        ("image", v.image.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("nfs", v.nfs.is_some()),
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("photonPersistentDisk", v.photon_persistent_disk.is_some()),
        ("portworxVolume", v.portworx_volume.is_some()),
        ("projected", v.projected.is_some()),
        ("quobyte", v.quobyte.is_some()),
        ("rbd", v.rbd.is_some()),
        ("scaleIO", v.scale_io.is_some()),
        ("secret", v.secret.is_some()),
        ("storageos", v.storageos.is_some()),
        ("vsphereVolume", v.vsphere_volume.is_some()),
    ];
    set.into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
}

const HOST_PATH_TYPES: &[&str] = &[
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
];

/// Validates the volumes; returns the errors and the set of valid volume names (for
/// `volumeMounts`).
pub fn validate_volumes(volumes: &[Volume], path: &Path) -> (Vec<FieldError>, BTreeSet<String>) {
    let mut errs = Vec::new();
    let mut names_seen = BTreeSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let idx = path.index(i);
        let name_path = idx.child("name");
        if v.name.is_empty() {
            errs.push(FieldError::required(&name_path, ""));
        } else {
            for msg in names::dns1123_label(&v.name) {
                errs.push(FieldError::invalid(&name_path, &v.name, &msg));
            }
            if !names_seen.insert(v.name.clone()) {
                errs.push(FieldError::duplicate(&name_path, &v.name));
            }
        }
        let sources = volume_source_names(v);
        match sources.as_slice() {
            [] => errs.push(FieldError::required(&idx, "must specify a volume type")),
            [_] => {}
            [_, rest @ ..] => {
                for extra in rest {
                    errs.push(FieldError::forbidden(
                        &idx.child(extra),
                        "may not specify more than 1 volume type",
                    ));
                }
            }
        }
        if let Some(hp) = &v.host_path {
            errs.extend(validate_host_path(hp, &idx.child("hostPath")));
        }
        if let Some(size) = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref()) {
            let p = idx.child("emptyDir").child("sizeLimit");
            super::containers::check_quantity(&size.0, &p, &mut errs);
        }
    }
    (errs, names_seen)
}

fn validate_host_path(hp: &HostPathVolumeSource, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let p = path.child("path");
    if hp.path.is_empty() {
        errs.push(FieldError::required(&p, ""));
    } else if has_backsteps(&hp.path) {
        errs.push(FieldError::invalid(&p, &hp.path, "must not contain '..'"));
    }
    if let Some(t) = &hp.type_
        && !HOST_PATH_TYPES.contains(&t.as_str())
    {
        errs.push(FieldError::not_supported(
            &path.child("type"),
            t,
            &HOST_PATH_TYPES[1..],
        ));
    }
    errs
}

/// True when a path has a `..` element.
pub fn has_backsteps(p: &str) -> bool {
    p.split('/').any(|part| part == "..")
}
