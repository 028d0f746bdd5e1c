//! Bad input is an error, never a panic: truncated and corrupt GGUF files, unknown
//! architectures and tensor types, prompts past the context, missing adapters.
mod common;

use aura::model::gguf::{self, Gguf, MetaValue, WriteTensor};
use aura::model::synthetic::{llama_gguf, Shape};
use aura::model::tensor::WeightType;
use aura::{AttentionPath, Backend, Engine, Error, HostModel, Model, Options, Session, SessionOptions};

fn real_gguf() -> Vec<u8> {
    std::fs::read(common::model_path()).expect("read model")
}

#[test]
fn truncated_real_gguf_is_an_error_at_every_cut() {
    let bytes = real_gguf();
    let g = Gguf::parse(&bytes).unwrap();
    let header_end = g.tensors.iter().map(|t| t.offset).min().unwrap() as usize;
    let mut rng = common::Rng(7);
    // Every cut in the first 4 KiB, random cuts through the metadata/tensor table,
    // and cuts inside the tensor data.
    let mut cuts: Vec<usize> = (0..4096).step_by(7).collect();
    cuts.extend((0..150).map(|_| rng.below(header_end)));
    cuts.extend((0..20).map(|_| header_end + rng.below(bytes.len() - header_end)));
    cuts.push(bytes.len() - 1);
    for cut in cuts {
        match HostModel::from_gguf_bytes(&bytes[..cut]) {
            Err(Error::Format(_)) => {}
            Err(e) => panic!("cut at {cut}: expected a format error, got {e}"),
            Ok(_) => panic!("cut at {cut} of {} bytes loaded without error", bytes.len()),
        }
    }
}

#[test]
fn corrupt_real_gguf_header_never_panics() {
    let bytes = real_gguf();
    let g = Gguf::parse(&bytes).unwrap();
    let header_end = g.tensors.iter().map(|t| t.offset).min().unwrap() as usize;
    let mut rng = common::Rng(11);
    let (mut ok, mut err) = (0, 0);
    for i in 0..300 {
        let mut b = bytes[..header_end].to_vec();
        // Flip 1-4 bytes, biased towards the fixed header and the tensor table.
        for _ in 0..1 + rng.below(4) {
            let pos = match i % 3 {
                0 => rng.below(64),
                1 => header_end - 1 - rng.below(header_end.min(20_000)),
                _ => rng.below(header_end),
            };
            b[pos] ^= 1 << rng.below(8);
        }
        // Parsing the header alone must not panic; either outcome is fine.
        match Gguf::parse(&b) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    eprintln!("300 corrupted headers: {ok} parsed, {err} rejected");
    assert!(err > 0, "no corruption was detected at all");
}

#[test]
fn bad_magic_version_and_counts() {
    let mut b = real_gguf()[..1 << 20].to_vec();
    b[0] = b'X';
    assert!(matches!(Gguf::parse(&b), Err(Error::Format(m)) if m.contains("not a GGUF")));
    let mut b = real_gguf()[..1 << 20].to_vec();
    b[4..8].copy_from_slice(&99u32.to_le_bytes());
    assert!(matches!(Gguf::parse(&b), Err(Error::Format(m)) if m.contains("version")));
    let mut b = real_gguf()[..1 << 20].to_vec();
    b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(Gguf::parse(&b), Err(Error::Format(_))));
}

fn tiny_with(meta_arch: &str, tensor_type: u32) -> Vec<u8> {
    let data = vec![0u8; 32 * 34];
    gguf::write(
        &[("general.architecture", MetaValue::Str(meta_arch.into()))],
        &[WriteTensor { name: "token_embd.weight", dims: &[32, 32], ggml_type: tensor_type, data: &data }],
    )
}

#[test]
fn unknown_architecture_and_tensor_type() {
    // A valid llama GGUF with its architecture renamed.
    let good = llama_gguf(&Shape::tiny(), WeightType::Q8_0, WeightType::Q8_0, 1);
    assert!(HostModel::from_gguf_bytes(&good).is_ok());
    let renamed = {
        let pat = b"\x05\x00\x00\x00\x00\x00\x00\x00llama";
        let at = good.windows(pat.len()).position(|w| w == pat).expect("architecture value");
        let mut b = good.clone();
        b[at + 8..at + 13].copy_from_slice(b"mamba");
        b
    };
    match HostModel::from_gguf_bytes(&renamed) {
        Err(Error::UnknownArchitecture(a)) => assert_eq!(a, "mamba"),
        other => panic!("expected UnknownArchitecture, got {:?}", other.err()),
    }
    // Q4_K (ggml type 12) is not supported: the error names the type and tensor.
    match Gguf::parse(&tiny_with("llama", 12)) {
        Err(e @ Error::UnsupportedTensorType { .. }) => {
            let m = e.to_string();
            assert!(m.contains("Q4_K") && m.contains("token_embd.weight"), "{m}");
        }
        other => panic!("expected UnsupportedTensorType, got {:?}", other.err()),
    }
}

#[test]
fn prompt_past_context_and_bad_tokens() {
    let engine = common::engine(Options { backend: Some(common::test_backends()[0]), ..Options::default() });
    let bytes = llama_gguf(&Shape::tiny(), WeightType::Q4_1, WeightType::Q8_0, 3);
    let model = Model::new(&engine, HostModel::from_gguf_bytes(&bytes).unwrap()).unwrap();
    pollster::block_on(async {
        let mut s = Session::new(&model, SessionOptions { capacity: 8, attention: None, kv: None }).await.unwrap();
        match s.prefill(&[1; 9]).await {
            Err(Error::ContextOverflow { needed: 9, capacity: 8 }) => {}
            other => panic!("expected ContextOverflow, got {:?}", other.err()),
        }
        assert_eq!(s.position(), 0, "a rejected prompt leaves the session untouched");
        s.prefill(&[1; 8]).await.unwrap();
        assert!(matches!(s.step(2).await, Err(Error::ContextOverflow { needed: 9, capacity: 8 })));
        assert!(matches!(s.step(100_000).await, Err(Error::InvalidArgument(_))));
        assert!(matches!(s.prefill(&[]).await, Err(Error::InvalidArgument(_))));
        assert!(matches!(s.rewind(99), Err(Error::InvalidArgument(_))));
        assert!(Session::new(&model, SessionOptions { capacity: 0, attention: None, kv: None }).await.is_err());
        assert!(Session::new(
            &model,
            SessionOptions { capacity: 8, attention: Some(AttentionPath::TwoPass { block: 48 }), kv: None }
        )
        .await
        .is_err());
    });
}

/// Forcing the output projection into the merge dispatch where the head dim does not allow
/// it (`Shape::tiny`: 32) is an error at session creation, not a silently wrong projection.
#[test]
fn forced_oproj_fold_at_an_unsupported_head_dim() {
    let b = common::test_backends()[0];
    let engine = common::engine(Options { backend: Some(b), fused_oproj: Some(true), ..Options::default() });
    let bytes = llama_gguf(&Shape::tiny(), WeightType::Q4_1, WeightType::Q8_0, 3);
    let model = Model::new(&engine, HostModel::from_gguf_bytes(&bytes).unwrap()).unwrap();
    let r = pollster::block_on(Session::new(&model, SessionOptions { capacity: 8, attention: None, kv: None }));
    match r {
        Err(Error::Unsupported(m)) => assert!(m.contains("head dims"), "{m}"),
        other => panic!("expected Unsupported, got {:?}", other.err()),
    }
}

#[test]
fn missing_adapter_is_an_error() {
    // No Metal or DX12 on a Linux CI machine.
    #[cfg(target_os = "linux")]
    for b in [Backend::Metal, Backend::Dx12] {
        match pollster::block_on(Engine::new(Options { backend: Some(b), ..Options::default() })) {
            Err(Error::NoAdapter(m)) => assert!(m.contains(&format!("{b:?}")), "{m}"),
            Err(e) => panic!("{b:?}: expected NoAdapter, got {e}"),
            Ok(_) => panic!("{b:?}: an adapter appeared on Linux"),
        }
    }
    // Forcing a feature the adapter lacks: GL on llvmpipe has no f16.
    if common::test_backends().contains(&Backend::Gl) {
        let r = pollster::block_on(Engine::new(Options {
            backend: Some(Backend::Gl),
            f16: Some(true),
            ..Options::default()
        }));
        assert!(matches!(r, Err(Error::Unsupported(_))), "forcing f16 on GL must fail");
    }
}

#[test]
fn option_parsing_errors() {
    assert!(Backend::parse("vulkan").is_ok());
    assert!(matches!(Backend::parse("cuda"), Err(Error::InvalidArgument(_))));
    assert_eq!(AttentionPath::parse("two-pass:128").unwrap(), AttentionPath::TwoPass { block: 128 });
    assert!(AttentionPath::parse("two-pass:100").is_err());
    assert_eq!(AttentionPath::parse("two-pass:16").unwrap(), AttentionPath::TwoPass { block: 16 });
    assert!(AttentionPath::parse("two-pass:8").is_err());
    assert!(AttentionPath::parse("fast").is_err());
}

#[test]
fn missing_files_are_io_errors() {
    let e = HostModel::load(std::path::Path::new("/nonexistent/model.gguf")).err().unwrap();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    let dir = std::env::temp_dir().join(format!("aura-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let e = HostModel::load(&dir).err().unwrap();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
