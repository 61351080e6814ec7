//! SageMaker model archives: a `model.tar.gz` (or a bare model file) unpacked into named files,
//! and the choice of which files make the model, by the framework the container image names.

use std::io::Read;

/// At most this many files are taken from one archive.
const MAX_FILES: usize = 256;

/// One file of an archive, by its base name.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The framework a container image names (`PrimaryContainer.Image`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    Xgboost,
    Lightgbm,
    /// scikit-learn models exported to ONNX (skl2onnx): riskserve reads no pickles.
    Sklearn,
    Onnx,
    Pmml,
    /// Any format riskserve reads, and pipeline specs.
    Riskserve,
}

impl Framework {
    /// The framework an image name selects: the first of riskserve, xgboost, lightgbm, sklearn,
    /// onnx and pmml that the name contains (case-insensitive).
    pub fn from_image(image: &str) -> Result<Framework, String> {
        let lower = image.to_ascii_lowercase();
        let candidates = [
            ("riskserve", Framework::Riskserve),
            ("xgboost", Framework::Xgboost),
            ("lightgbm", Framework::Lightgbm),
            ("sklearn", Framework::Sklearn),
            ("scikit", Framework::Sklearn),
            ("onnx", Framework::Onnx),
            ("pmml", Framework::Pmml),
        ];
        candidates.iter().find(|(word, _)| lower.contains(word)).map(|(_, framework)| *framework).ok_or_else(|| {
            format!(
                "the image {image:?} names no framework riskserve serves; use an image name that contains xgboost, \
                 lightgbm, sklearn, onnx, pmml or riskserve"
            )
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Framework::Xgboost => "xgboost",
            Framework::Lightgbm => "lightgbm",
            Framework::Sklearn => "sklearn",
            Framework::Onnx => "onnx",
            Framework::Pmml => "pmml",
            Framework::Riskserve => "riskserve",
        }
    }
}

/// Unpacks `bytes`: a gzip-compressed or plain tar archive into its regular files (base names;
/// macOS `._` companions and folders skipped), anything else as one file named `model`. The
/// unpacked size is capped at `limit` bytes.
pub fn unpack(bytes: &[u8], limit: usize) -> Result<Vec<ArchiveFile>, String> {
    let inflated;
    let content: &[u8] = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut decoder = flate2::read::GzDecoder::new(bytes).take(limit as u64 + 1);
        let mut buffer = Vec::new();
        decoder.read_to_end(&mut buffer).map_err(|error| format!("the archive is not valid gzip: {error}"))?;
        if buffer.len() > limit {
            return Err(format!("the archive unpacks to more than the {limit} bytes accepted"));
        }
        inflated = buffer;
        &inflated
    } else {
        bytes
    };
    if !is_tar(content) {
        return Ok(vec![ArchiveFile { name: "model".to_string(), bytes: content.to_vec() }]);
    }
    let mut files = Vec::new();
    let mut archive = tar::Archive::new(content);
    let entries = archive.entries().map_err(|error| format!("the tar archive cannot be read: {error}"))?;
    for (index, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|error| format!("tar entry {}: {error}", index + 1))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(|error| format!("tar entry {}: a bad path: {error}", index + 1))?;
        let Some(name) = path.file_name().map(|name| name.to_string_lossy().into_owned()) else { continue };
        if name.starts_with("._") || name == ".DS_Store" {
            continue;
        }
        if files.len() >= MAX_FILES {
            return Err(format!("the archive holds more than {MAX_FILES} files"));
        }
        let size = entry.header().size().unwrap_or(0);
        if size > limit as u64 {
            return Err(format!("{name} in the archive has {size} bytes, more than the {limit} accepted"));
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(|error| format!("{name} in the archive cannot be read: {error}"))?;
        if files.iter().any(|file: &ArchiveFile| file.name == name) {
            return Err(format!("the archive holds two files named {name:?} (in different folders)"));
        }
        files.push(ArchiveFile { name, bytes: data });
    }
    if files.is_empty() {
        return Err("the archive holds no files".to_string());
    }
    Ok(files)
}

/// A POSIX tar header carries `ustar` at offset 257.
fn is_tar(bytes: &[u8]) -> bool {
    bytes.get(257..262) == Some(b"ustar".as_slice())
}

/// The files a model is made of, as the native API takes them.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFiles {
    /// Model files by name.
    pub artifacts: Vec<ArchiveFile>,
    /// A pipeline spec (`pipeline.json`), which names the model files it uses.
    pub pipeline: Option<Vec<u8>>,
    /// The format name when the framework fixes it.
    pub format: Option<&'static str>,
}

/// The file name of a pipeline spec in an archive.
pub const PIPELINE_FILE: &str = "pipeline.json";
/// The file name of the built-in XGBoost container's model.
pub const XGBOOST_FILE: &str = "xgboost-model";

/// Picks the model out of an archive's files for `framework`: `pipeline.json` and the files it
/// names when there is one, else the built-in XGBoost container's `xgboost-model`, else the
/// only model file.
pub fn select(files: Vec<ArchiveFile>, framework: Framework) -> Result<ModelFiles, String> {
    let mut files: Vec<ArchiveFile> = files.into_iter().filter(|file| !is_documentation(&file.name)).collect();
    if let Some(position) = files.iter().position(|file| file.name == PIPELINE_FILE) {
        let spec = files.remove(position);
        for file in &files {
            check_model_file(file, framework)?;
        }
        return Ok(ModelFiles { artifacts: files, pipeline: Some(spec.bytes), format: None });
    }
    let chosen = if let Some(position) = files.iter().position(|file| file.name == XGBOOST_FILE) {
        files.swap_remove(position)
    } else {
        match files.len() {
            1 => files.remove(0),
            0 => return Err("the archive holds no model file".to_string()),
            count => {
                let names: Vec<&str> = files.iter().map(|file| file.name.as_str()).collect();
                return Err(format!(
                    "the archive holds {count} files ({}) and no {PIPELINE_FILE} that says how they fit together; \
                     put one model file in it, or a {PIPELINE_FILE}",
                    names.join(", ")
                ));
            }
        }
    };
    let format = check_model_file(&chosen, framework)?;
    Ok(ModelFiles { artifacts: vec![chosen], pipeline: None, format })
}

fn is_documentation(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".md") || lower.starts_with("readme") || lower.starts_with("license")
}

/// Refuses files the framework cannot be (a pickle, XGBoost's legacy binary format) with a
/// message that says what to do; returns the format name the framework fixes.
fn check_model_file(file: &ArchiveFile, framework: Framework) -> Result<Option<&'static str>, String> {
    let name = &file.name;
    let first = file.bytes.iter().copied().find(|byte| !byte.is_ascii_whitespace());
    // Python pickles (and joblib files) open with the PROTO opcode 0x80.
    if file.bytes.first() == Some(&0x80) {
        return Err(format!(
            "{name} is a Python pickle, which riskserve does not read (it could run any code); save XGBoost \
             models with booster.save_model(\"{XGBOOST_FILE}.json\"), export scikit-learn models with skl2onnx"
        ));
    }
    let detected = riskserve_model::detect_format(&file.bytes).ok();
    match framework {
        Framework::Xgboost => match (first, detected) {
            (Some(b'{'), Some(riskserve_model::Format::XgboostJson)) => Ok(Some("xgboost-json")),
            (Some(b'{'), _) => Ok(Some("xgboost-ubj")),
            _ => Err(format!(
                "{name} is not XGBoost JSON or UBJSON; it looks like XGBoost's legacy binary format, which riskserve \
                 does not read: load it with xgboost and save it again with booster.save_model(\"model.json\") or \
                 (\"model.ubj\"), then name it {XGBOOST_FILE} in the archive"
            )),
        },
        Framework::Lightgbm => match detected {
            Some(riskserve_model::Format::Lightgbm) => Ok(Some("lightgbm")),
            _ => Err(format!("{name} is not a LightGBM text model (booster.save_model(\"model.txt\"))")),
        },
        Framework::Sklearn | Framework::Onnx => match detected {
            Some(riskserve_model::Format::Onnx) => Ok(Some("onnx")),
            _ => Err(format!(
                "{name} is not an ONNX model; the {} image takes ONNX files (scikit-learn models exported with skl2onnx)",
                framework.name()
            )),
        },
        Framework::Pmml => match detected {
            Some(riskserve_model::Format::Pmml) => Ok(Some("pmml")),
            _ => Err(format!("{name} is not a PMML document")),
        },
        Framework::Riskserve => Ok(None),
    }
}

/// How the models of several containers become one riskserve model: one container is the model;
/// several fit when exactly one of them brings a `pipeline.json` and the others only model files
/// it names. Each container comes with the place its request named it (`Containers.2`).
pub fn merge(files: Vec<(String, ModelFiles)>) -> Result<ModelFiles, String> {
    if files.len() == 1 {
        return files.into_iter().next().map(|(_, files)| files).ok_or_else(|| "no container".to_string());
    }
    let with_spec: Vec<&str> =
        files.iter().filter(|(_, files)| files.pipeline.is_some()).map(|(place, _)| place.as_str()).collect();
    if with_spec.len() != 1 {
        return Err(format!(
            "a serial inference pipeline of {} containers maps onto one riskserve pipeline only when exactly one \
             container's archive holds a {} naming the other containers' model files ({} do); riskserve runs \
             no container code",
            files.len(),
            PIPELINE_FILE,
            with_spec.len()
        ));
    }
    let mut merged = ModelFiles { artifacts: Vec::new(), pipeline: None, format: None };
    for (place, container) in files {
        if container.pipeline.is_some() {
            merged.pipeline = container.pipeline;
        }
        for file in container.artifacts {
            if merged.artifacts.iter().any(|existing| existing.name == file.name) {
                return Err(format!("{place}: a file named {:?} comes from two containers", file.name));
            }
            merged.artifacts.push(file);
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *bytes).expect("append");
        }
        let tar = builder.into_inner().expect("tar");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, &tar).expect("gzip");
        encoder.finish().expect("gzip")
    }

    #[test]
    fn images_name_frameworks() {
        let image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1";
        assert_eq!(Framework::from_image(image), Ok(Framework::Xgboost));
        assert_eq!(Framework::from_image("riskserve/pipeline"), Ok(Framework::Riskserve));
        assert_eq!(Framework::from_image("my/SKLEARN-thing"), Ok(Framework::Sklearn));
        let error = Framework::from_image("pytorch-inference:2.1").expect_err("unknown");
        assert!(error.contains("xgboost, lightgbm"), "{error}");
    }

    #[test]
    fn archives_unpack_to_base_names() {
        let archive = tar_gz(&[("./xgboost-model", b"{\"learner\": {}}"), ("._xgboost-model", b"junk")]);
        let files = unpack(&archive, 1 << 20).expect("unpack");
        assert_eq!(files, vec![ArchiveFile { name: "xgboost-model".into(), bytes: b"{\"learner\": {}}".to_vec() }]);
        let chosen = select(files, Framework::Xgboost).expect("select");
        assert_eq!(chosen.format, Some("xgboost-json"));
        // A bare file is one file named "model".
        assert_eq!(unpack(b"tree\nversion=v4\n", 100).expect("bare")[0].name, "model");
    }

    #[test]
    fn legacy_binary_and_pickles_are_refused_by_name() {
        let legacy = [0u8, 0, 0, 63, 1, 0, 0, 0];
        let error = select(vec![ArchiveFile { name: XGBOOST_FILE.into(), bytes: legacy.to_vec() }], Framework::Xgboost)
            .expect_err("legacy");
        assert!(error.contains("legacy binary format"), "{error}");
        let error =
            select(vec![ArchiveFile { name: "model.pkl".into(), bytes: vec![0x80, 4, 0x95] }], Framework::Sklearn)
                .expect_err("pickle");
        assert!(error.contains("pickle"), "{error}");
    }

    #[test]
    fn pipelines_take_every_file_and_several_models_need_one() {
        let files = vec![
            ArchiveFile { name: PIPELINE_FILE.into(), bytes: b"{}".to_vec() },
            ArchiveFile { name: "a.json".into(), bytes: b"{\"x\": 1}".to_vec() },
            ArchiveFile { name: "README.md".into(), bytes: b"notes".to_vec() },
        ];
        let chosen = select(files, Framework::Riskserve).expect("pipeline");
        assert_eq!(chosen.pipeline.as_deref(), Some(b"{}".as_slice()));
        assert_eq!(chosen.artifacts.len(), 1);
        let two = vec![
            ArchiveFile { name: "a.txt".into(), bytes: b"tree\n".to_vec() },
            ArchiveFile { name: "b.txt".into(), bytes: b"tree\n".to_vec() },
        ];
        assert!(select(two, Framework::Lightgbm).expect_err("two").contains("pipeline.json"));
    }

    #[test]
    fn damaged_archives_never_panic() {
        let archive = tar_gz(&[("xgboost-model", &[b'{'; 3000])]);
        for cut in (0..archive.len()).step_by(7) {
            let _ = unpack(&archive[..cut], 1 << 20);
        }
        let mut flipped = archive.clone();
        for index in (0..flipped.len()).step_by(11) {
            flipped[index] ^= 0x5a;
            let _ = unpack(&flipped, 1 << 20);
        }
        assert!(unpack(&archive, 100).expect_err("limit").contains("more than"));
    }
}
