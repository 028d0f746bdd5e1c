//! naga parse + validation of every composed shader: every kernel x weight type x
//! variant (f16, subgroups) x the shape constants the engine builds (SmolLM2-135M:
//! hidden 576, ffn 1536, head_dim 64, GQA group 3; plus head dims 128/256, other
//! groups, split blocks and every AURA KV bit width).
//! The validator gets exactly the capabilities the variant's device features give
//! (wgpu's features_to_naga_capabilities), so a plain variant that uses f16 or
//! subgroup builtins fails here, without a GPU.
use aura::gpu::registry::{compose, empty_kernel, Bind, Kernel, PipelineKey};
use aura::gpu::Variant;
use aura::kernels::*;
use aura::model::tensor::WeightType;
use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};

/// SmolLM2-135M shapes: hidden, ffn, head_dim; head dims and split blocks besides.
const HIDDEN: usize = 576;
const FFN: usize = 1536;
const HEAD_DIMS: [usize; 3] = [64, 128, 256];
const SPLIT_BLOCKS: [u32; 6] = [16, 32, 64, 128, 256, 512];
/// Bits per index of the AURA KV scheme (`aura{K}v{V}`).
const AURA_BITS: [u32; 4] = [2, 3, 4, 8];
/// Device limits the engine requests (gpu/mod.rs caps them at these values).
const MAX_INVOCATIONS: u32 = 256;
const MAX_WORKGROUP_BYTES: u32 = 16384;

const VARIANTS: [Variant; 4] = [
    Variant { f16: false, subgroups: false },
    Variant { f16: true, subgroups: false },
    Variant { f16: false, subgroups: true },
    Variant { f16: true, subgroups: true },
];

/// What a device that enabled exactly this variant's features lets shaders use.
/// SHADER_FLOAT16_IN_FLOAT32 (unpack2x16float, which every weight decoder needs) comes
/// from a downlevel flag that lavapipe and llvmpipe both have; SHADER_FLOAT16 only with
/// the SHADER_F16 feature; SUBGROUP only with SUBGROUP.
fn validator(v: Variant) -> Validator {
    let mut caps = Capabilities::SHADER_FLOAT16_IN_FLOAT32;
    caps.set(Capabilities::SHADER_FLOAT16, v.f16);
    caps.set(Capabilities::SUBGROUP, v.subgroups);
    let mut val = Validator::new(ValidationFlags::all(), caps);
    if v.subgroups {
        val.subgroup_stages(ShaderStages::COMPUTE);
        val.subgroup_operations(SubgroupOperationSet::BASIC | SubgroupOperationSet::ARITHMETIC);
    } else {
        val.subgroup_stages(ShaderStages::empty());
        val.subgroup_operations(SubgroupOperationSet::empty());
    }
    val
}

/// Every pipeline key the engine can build for a variant.
fn keys(v: Variant) -> Vec<PipelineKey> {
    let mut out = Vec::new();
    for ty in WeightType::ALL {
        out.push(embed_key(v, ty, HIDDEN));
        for k in [HIDDEN, FFN] {
            for tt in [1, PREFILL_TOKEN_TILE] {
                for rows in [HIDDEN, 4 * FFN] {
                    out.push(matvec_key(v, ty, k, rows, tt));
                }
            }
            out.push(matmul_key(v, ty, k, PREFILL_TOKEN_TILE));
        }
        for rows in [HIDDEN, 4 * FFN] {
            out.push(matvec_norm_key(v, ty, HIDDEN, rows, 0, false));
            for hd in HEAD_DIMS {
                out.push(matvec_norm_key(v, ty, HIDDEN, rows, hd, false));
                out.push(matvec_norm_key(v, ty, HIDDEN, rows, hd, true));
            }
            out.push(matvec_glu_key(v, ty, HIDDEN, rows));
        }
    }
    out.push(argmax_key(v));
    out.push(rmsnorm_key(v, HIDDEN));
    out.push(silu_mul_key(v));
    for hd in HEAD_DIMS {
        out.push(rope_kv_key(v, hd));
        for heads in [1, 3, 4].map(|g| dense_heads_per_workgroup(g, hd)) {
            out.push(attn_key(v, hd, heads, 0, false));
            for merge in [false, true] {
                out.extend(SPLIT_BLOCKS.iter().map(|&b| attn_key(v, hd, heads, b, merge)));
            }
        }
        out.push(merge_key(v, hd, false));
        out.push(merge_key(v, hd, true));
        // With Wo folded in: every weight type, hidden sizes of 1 to 8 workgroups per head and
        // up to the most passes per workgroup.
        for ty in WeightType::ALL {
            for unrotate in [false, true] {
                for rows in [HIDDEN, 256, 896, 2048] {
                    out.push(merge_oproj_key(v, hd, unrotate, ty, 3, rows));
                }
            }
        }
        // AURA-compressed KV: every K/V bit width the scheme parser accepts.
        out.extend([kv_encode_key(v, hd), kv_dequant_key(v, hd)]);
        for (kb, vb) in AURA_BITS.iter().flat_map(|&k| AURA_BITS.iter().map(move |&v| (k, v))) {
            for group in [1, 3, 8] {
                // With the fused encode wherever it fits.
                for enc in [false, true].into_iter().filter(|&e| !e || aura_encode_fits(hd, group, kb, vb)) {
                    let all = (hd / 4) as u32;
                    // SmolLM2's RoPE: the mean on the slow pairs only (opt-in) single-pass and
                    // in the blocks with the fused merge, on every pair (the default) in the
                    // others, either way through the fit.
                    let cz = aura_centering_cz(hd, 100000.0, true, true);
                    out.push(attn_aura_key(v, hd, group, 0, false, kb, vb, enc, all, cz));
                    for merge in [false, true] {
                        let z = if merge { cz } else { 0 };
                        out.extend(
                            [16, 64, 256].map(|block| attn_aura_key(v, hd, group, block, merge, kb, vb, enc, all, z)),
                        );
                        // Key centering through the fit (one-tile blocks).
                        let cx = aura_centering_cx(64, hd, 100000.0, true, true);
                        out.extend([0, cz].map(|z| attn_aura_key(v, hd, group, 64, merge, kb, vb, enc, cx, z)));
                    }
                }
            }
        }
    }
    out
}

fn describe(key: &PipelineKey) -> String {
    format!("{}:{} {:?} {:?}", key.kernel.stem(), key.weight.map_or("-", |w| w.name()), key.variant, key.consts)
}

/// Parse and validate one key's composed module; returns the module or the error text.
fn validate(key: &PipelineKey, val: Validator) -> Result<naga::Module, String> {
    validate_src(&compose(key), val)
}

fn validate_src(src: &str, mut val: Validator) -> Result<naga::Module, String> {
    let src = src.to_string();
    let module = naga::front::wgsl::parse_str(&src).map_err(|e| format!("parse: {}", e.emit_to_string(&src)))?;
    val.validate(&module).map_err(|e| format!("validate: {}", e.emit_to_string(&src)))?;
    Ok(module)
}

/// Interface checks beyond validity: one compute entry point named after the stem,
/// group-0 bindings exactly as `Kernel::bindings` declares (wgpu builds the bind group
/// layout from that list), and workgroup size / memory within the requested limits.
fn check_interface(key: &PipelineKey, m: &naga::Module) -> Result<(), String> {
    let stem = key.kernel.stem();
    let eps: Vec<_> = m.entry_points.iter().map(|e| (e.name.as_str(), e.stage)).collect();
    if eps != [(stem, naga::ShaderStage::Compute)] {
        return Err(format!("entry points {eps:?}, expected one compute entry `{stem}`"));
    }
    let mut g0: Vec<(u32, Bind)> = Vec::new();
    let mut wg_bytes = 0;
    for (_, g) in m.global_variables.iter() {
        match (g.space, g.binding.as_ref()) {
            (naga::AddressSpace::WorkGroup, _) => wg_bytes += m.types[g.ty].inner.size(m.to_ctx()),
            (naga::AddressSpace::Uniform, Some(b)) if b.group == 0 => g0.push((b.binding, Bind::Uniform)),
            (naga::AddressSpace::Storage { access }, Some(b)) if b.group == 0 => {
                let kind = if access.contains(naga::StorageAccess::STORE) { Bind::ReadWrite } else { Bind::Read };
                g0.push((b.binding, kind));
            }
            (_, Some(b)) if b.group == 0 => {
                return Err(format!("binding {} is neither a uniform nor a storage buffer", b.binding))
            }
            _ => {}
        }
    }
    g0.sort_by_key(|b| b.0);
    let want: Vec<(u32, Bind)> = key.bindings().iter().enumerate().map(|(i, b)| (i as u32, *b)).collect();
    if g0 != want {
        return Err(format!("group 0 bindings {g0:?}, Kernel::bindings() says {want:?}"));
    }
    let wg = m.entry_points[0].workgroup_size;
    if wg.iter().product::<u32>() > MAX_INVOCATIONS {
        return Err(format!("workgroup size {wg:?} exceeds {MAX_INVOCATIONS} invocations"));
    }
    if wg_bytes > MAX_WORKGROUP_BYTES {
        return Err(format!("{wg_bytes} bytes of workgroup memory exceed {MAX_WORKGROUP_BYTES}"));
    }
    Ok(())
}

#[test]
fn every_composed_shader_validates() {
    let mut failures = Vec::new();
    let mut n = 0;
    let covered: Vec<Kernel> = keys(VARIANTS[0]).iter().map(|k| k.kernel).collect();
    let missing: Vec<Kernel> = Kernel::ALL.into_iter().filter(|k| !covered.contains(k)).collect();
    assert!(missing.is_empty(), "keys() builds no pipeline key for {missing:?}: add the kernel's real shapes");
    for v in VARIANTS {
        for key in keys(v) {
            n += 1;
            let res = validate(&key, validator(v)).and_then(|m| check_interface(&key, &m));
            if let Err(e) = res {
                failures.push(format!("{}\n{e}", describe(&key)));
            }
            // The measurement variant (`Options::empty_kernels`) keeps the same interface.
            let res = validate_src(&empty_kernel(&compose(&key)), validator(v)).and_then(|m| check_interface(&key, &m));
            if let Err(e) = res {
                failures.push(format!("{} (empty)\n{e}", describe(&key)));
            }
        }
    }
    println!("validated {n} composed shaders");
    assert!(failures.is_empty(), "{} of {n} shaders failed:\n{}", failures.len(), failures.join("\n\n"));
}

/// The capability gating above is not vacuous: the f16 variant of a kernel that stores
/// f16 KV needs SHADER_FLOAT16, and the subgroup reductions need SUBGROUP.
#[test]
fn validator_rejects_features_the_variant_lacks() {
    let f16 = Variant { f16: true, subgroups: false };
    let sg = Variant { f16: false, subgroups: true };
    let plain = Variant { f16: false, subgroups: false };
    for key in [rope_kv_key(f16, 64), attn_key(f16, 64, 1, 0, false)] {
        assert!(validate(&key, validator(plain)).is_err(), "{} validated without SHADER_FLOAT16", describe(&key));
    }
    for key in
        [rmsnorm_key(sg, HIDDEN), matvec_key(sg, WeightType::Q4_1, HIDDEN, HIDDEN, 1), attn_key(sg, 64, 3, 64, true)]
    {
        assert!(validate(&key, validator(plain)).is_err(), "{} validated without SUBGROUP", describe(&key));
    }
}

/// wgsl/*.wgsl (not common/) is exactly one file per Kernel, each defining
/// `fn <stem>(` once and declaring as many group-0 bindings as Kernel::bindings().
#[test]
fn wgsl_files_match_kernels() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("wgsl");
    let mut stems: Vec<String> = std::fs::read_dir(&dir)
        .expect("wgsl/ directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    stems.sort();
    let mut kernels: Vec<&str> = Kernel::ALL.iter().map(|k| k.stem()).collect();
    kernels.sort();
    assert_eq!(stems, kernels, "wgsl/*.wgsl files vs Kernel::ALL stems");
    for k in Kernel::ALL {
        let path = dir.join(format!("{}.wgsl", k.stem()));
        let src = std::fs::read_to_string(&path).unwrap();
        let defs = src.matches(&format!("fn {}(", k.stem())).count();
        assert_eq!(defs, 1, "{}: `fn {}(` defined {defs} times", path.display(), k.stem());
        let bindings = src.matches("@group(0) @binding(").count();
        assert_eq!(
            bindings,
            k.bindings().len(),
            "{}: {bindings} `@group(0) @binding(` vs Kernel::bindings()",
            path.display()
        );
        for i in 0..k.bindings().len() {
            assert!(src.contains(&format!("@group(0) @binding({i})")), "{}: binding {i} missing", path.display());
        }
    }
}
