//! Mutations of a payload: of its JSON values and structure first, then of
//! its bytes.
//!
//! Each mutation names its target by a proptest [`Index`] into the nodes of
//! the kind it needs (any node, a member, a constraint, a strategy, a flag,
//! an array), chosen when it is applied; a mutation whose kind of target the
//! document lacks does nothing. So a case is a short list of small
//! descriptions that proptest shrinks towards the fewest mutations needed.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};

use super::hostile::{hostile, length, text_from, Hostile, Texts, INTEGERS, OPERATORS, STRATEGIES};
use super::json::{duplicate_key, to_bytes};

/// A step of a path from the root to a node.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    At(usize),
}

/// Nodes visited when targets are listed (a document grown huge by earlier
/// mutations is mutated in its first part).
const MAX_NODES: usize = 50_000;

/// Most bytes one repetition adds (a repeated element that already holds
/// a huge array would otherwise make inputs of gigabytes).
const MAX_REPEATED_BYTES: usize = 16 << 20;

/// Strategy parameters worth setting.
const PARAMETERS: &[&str] = &[
    "rollout",
    "percentage",
    "stickiness",
    "groupId",
    "userIds",
    "IPs",
    "hostNames",
];

/// A change to the document's values or structure.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Any node replaced.
    Replace(Index, Hostile),
    /// An object member's value replaced (a field of the wrong type).
    ReplaceMember(Index, Hostile),
    /// A member or an element removed (a missing field).
    Remove(Index),
    /// A member written twice, the second time with this value (or the same).
    DuplicateKey(Index, Option<Hostile>),
    /// A node copied over another (structure in the wrong place).
    Copy(Index, Index),
    /// A node of another corpus document copied over one of this one.
    Graft(usize, Index, Index),
    /// An array element repeated (huge arrays, duplicate names and ids).
    Repeat(Index, usize),
    /// A constraint given an operator and operands from a table.
    Operator {
        at: Index,
        operator: usize,
        operands: Texts,
        pick: usize,
        list: bool,
        inverted: bool,
        case_insensitive: bool,
    },
    /// A strategy renamed (its parameters stay).
    StrategyName(Index, usize),
    /// A strategy parameter set.
    Parameter(Index, usize, Hostile),
    /// A flag made to depend on another flag, itself, or a missing one.
    Depend(Index, Option<Index>),
    /// A strategy made to use a segment id that may not exist.
    SegmentRef(Index, usize),
    /// A flag's or strategy's variant weights set (sums past u32 included).
    Weights(Index, Vec<usize>),
}

impl Mutation {
    /// The class name, for the counts a run prints.
    pub fn class(&self) -> &'static str {
        match self {
            Mutation::Replace(..) => "replace any node",
            Mutation::ReplaceMember(..) => "field of the wrong type",
            Mutation::Remove(..) => "missing field or element",
            Mutation::DuplicateKey(..) => "duplicate key",
            Mutation::Copy(..) => "subtree moved",
            Mutation::Graft(..) => "subtree from another document",
            Mutation::Repeat(..) => "element repeated",
            Mutation::Operator { .. } => "constraint operator and operands",
            Mutation::StrategyName(..) => "strategy renamed",
            Mutation::Parameter(..) => "strategy parameter",
            Mutation::Depend(..) => "dependency (cycles, missing parents)",
            Mutation::SegmentRef(..) => "segment reference",
            Mutation::Weights(..) => "variant weights",
        }
    }

    /// The hostile value it carries, if any.
    pub fn hostile(&self) -> Option<&Hostile> {
        match self {
            Mutation::Replace(_, h)
            | Mutation::ReplaceMember(_, h)
            | Mutation::Parameter(_, _, h) => Some(h),
            Mutation::DuplicateKey(_, h) => h.as_ref(),
            _ => None,
        }
    }
}

/// A change to the written bytes.
#[derive(Debug, Clone)]
pub enum ByteMutation {
    FlipBit(Index, u8),
    SetByte(Index, usize),
    Insert(Index, usize),
    Delete(Index, usize),
    Truncate(Index),
    DuplicateRange(Index, usize),
}

impl ByteMutation {
    /// The class name, for the counts a run prints.
    pub fn class(&self) -> &'static str {
        match self {
            ByteMutation::FlipBit(..) => "bytes: bit flipped",
            ByteMutation::SetByte(..) => "bytes: byte replaced",
            ByteMutation::Insert(..) => "bytes: text inserted",
            ByteMutation::Delete(..) => "bytes: range deleted",
            ByteMutation::Truncate(..) => "bytes: truncated",
            ByteMutation::DuplicateRange(..) => "bytes: range repeated",
        }
    }
}

/// Bytes written over one.
const BYTES: &[u8] = b"\x00\xff\xc0\x80\xed\"\\{}[],:0-e. ";

/// Texts inserted between bytes.
const INSERTS: &[&[u8]] = &[
    b"\xff",
    b"\xed\xa0\x80",
    b"\xc0\x80",
    b"\xef\xbb\xbf",
    b"\0",
    b"{",
    b"[",
    b"]",
    b"}",
    b",",
    b":",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"1e400",
    b"null",
    b"\"features\":[],",
    b"\"features\":null,",
    b"\"events\":[],",
    b"/*",
    b"\n",
];

/// One mutation of the values or structure.
pub fn mutation(corpus_len: usize) -> impl Strategy<Value = Mutation> {
    let index = any::<Index>;
    let operator = (
        index(),
        0..OPERATORS.len(),
        prop::sample::select(Texts::OPERANDS.to_vec()),
        any::<usize>(),
        any::<(bool, bool, bool)>(),
    )
        .prop_map(
            |(at, operator, operands, pick, (list, inverted, case_insensitive))| {
                Mutation::Operator {
                    at,
                    operator,
                    operands,
                    pick,
                    list,
                    inverted,
                    case_insensitive,
                }
            },
        );
    prop_oneof![
        3 => (index(), hostile()).prop_map(|(i, h)| Mutation::Replace(i, h)),
        6 => (index(), hostile()).prop_map(|(i, h)| Mutation::ReplaceMember(i, h)),
        3 => index().prop_map(Mutation::Remove),
        2 => (index(), prop::option::of(hostile())).prop_map(|(i, h)| Mutation::DuplicateKey(i, h)),
        2 => (index(), index()).prop_map(|(a, b)| Mutation::Copy(a, b)),
        2 => (0..corpus_len, index(), index()).prop_map(|(d, a, b)| Mutation::Graft(d, a, b)),
        2 => (index(), length(20_000)).prop_map(|(i, n)| Mutation::Repeat(i, n)),
        6 => operator,
        2 => (index(), 0..STRATEGIES.len()).prop_map(|(i, s)| Mutation::StrategyName(i, s)),
        3 => (index(), 0..PARAMETERS.len(), prop_oneof![
                text_from(Texts::Numeric),
                text_from(Texts::Field),
                text_from(Texts::Cidr),
                hostile(),
            ]).prop_map(|(i, p, h)| Mutation::Parameter(i, p, h)),
        2 => (index(), prop::option::of(index())).prop_map(|(i, on)| Mutation::Depend(i, on)),
        2 => (index(), any::<usize>()).prop_map(|(i, id)| Mutation::SegmentRef(i, id)),
        2 => (index(), prop::collection::vec(any::<usize>(), 1..6))
            .prop_map(|(i, w)| Mutation::Weights(i, w)),
    ]
}

/// One mutation of the bytes.
pub fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    let index = any::<Index>;
    prop_oneof![
        (index(), 0..8u8).prop_map(|(i, b)| ByteMutation::FlipBit(i, b)),
        (index(), 0..BYTES.len()).prop_map(|(i, b)| ByteMutation::SetByte(i, b)),
        (index(), 0..INSERTS.len()).prop_map(|(i, t)| ByteMutation::Insert(i, t)),
        (index(), 1..64usize).prop_map(|(i, n)| ByteMutation::Delete(i, n)),
        index().prop_map(ByteMutation::Truncate),
        (index(), 1..256usize).prop_map(|(i, n)| ByteMutation::DuplicateRange(i, n)),
    ]
}

/// Applies a mutation; `donors` are the corpus documents.
pub fn apply(doc: &mut Value, mutation: &Mutation, donors: &[Value], unique: &mut usize) {
    let nodes = paths(doc);
    let pick = |index: &Index, filter: &dyn Fn(&[Seg], &Value) -> bool| -> Option<Vec<Seg>> {
        let found: Vec<&Vec<Seg>> = nodes
            .iter()
            .filter(|p| node(doc, p).is_some_and(|v| filter(p, v)))
            .collect();
        (!found.is_empty()).then(|| found[index.index(found.len())].clone())
    };
    let any_node = |_: &[Seg], _: &Value| true;
    let member = |p: &[Seg], _: &Value| matches!(p.last(), Some(Seg::Key(_)));
    let in_list = |name: &'static str| {
        move |p: &[Seg], v: &Value| {
            v.is_object() && matches!(p, [.., Seg::Key(k), Seg::At(_)] if k == name)
        }
    };
    let flag = |p: &[Seg], v: &Value| {
        v.is_object() && matches!(p, [.., Seg::Key(k), Seg::At(_)] if k == "features")
            || matches!(p, [.., Seg::Key(k)] if k == "feature")
    };
    match mutation {
        Mutation::Replace(at, with) => {
            if let Some(p) = pick(at, &any_node) {
                set(doc, &p, with.to_value());
            }
        }
        Mutation::ReplaceMember(at, with) => {
            if let Some(p) = pick(at, &member) {
                set(doc, &p, with.to_value());
            }
        }
        Mutation::Remove(at) => {
            if let Some(p) = pick(at, &|p, _| !p.is_empty()) {
                remove(doc, &p);
            }
        }
        Mutation::DuplicateKey(at, with) => {
            if let Some(p) = pick(at, &member) {
                let value = match with {
                    Some(h) => h.to_value(),
                    None => node(doc, &p).cloned().unwrap_or(Value::Null),
                };
                let (Seg::Key(key), parent) = p.split_last().expect("a member") else {
                    unreachable!("members end in a key")
                };
                *unique += 1;
                if let Some(Value::Object(obj)) = node_mut(doc, parent) {
                    obj.insert(duplicate_key(key, *unique), value);
                }
            }
        }
        Mutation::Copy(from, to) => {
            if let (Some(from), Some(to)) = (pick(from, &any_node), pick(to, &any_node)) {
                let value = node(doc, &from).cloned().unwrap_or(Value::Null);
                set(doc, &to, value);
            }
        }
        Mutation::Graft(donor, from, to) => {
            let donor = &donors[*donor % donors.len()];
            let donor_nodes = paths(donor);
            if let Some(to) = pick(to, &any_node) {
                let from = &donor_nodes[from.index(donor_nodes.len())];
                set(doc, &to, node(donor, from).cloned().unwrap_or(Value::Null));
            }
        }
        Mutation::Repeat(at, times) => {
            if let Some(p) = pick(at, &|p, _| matches!(p.last(), Some(Seg::At(_)))) {
                let item = node(doc, &p).cloned().unwrap_or(Value::Null);
                let times = (*times).min(MAX_REPEATED_BYTES / (to_bytes(&item).len() + 1));
                if let Some(Value::Array(items)) = node_mut(doc, &p[..p.len() - 1]) {
                    items.extend(std::iter::repeat_n(item, times));
                }
            }
        }
        Mutation::Operator {
            at,
            operator,
            operands,
            pick: k,
            list,
            inverted,
            case_insensitive,
        } => {
            if let Some(p) = pick(at, &in_list("constraints")) {
                if let Some(Value::Object(c)) = node_mut(doc, &p) {
                    c.insert("operator".into(), json!(OPERATORS[*operator]));
                    if *list {
                        let values: Vec<&str> = (0..3).map(|i| operands.pick(k + i)).collect();
                        c.insert("values".into(), json!(values));
                    } else {
                        c.insert("value".into(), json!(operands.pick(*k)));
                    }
                    c.insert("inverted".into(), json!(inverted));
                    c.insert("caseInsensitive".into(), json!(case_insensitive));
                }
            }
        }
        Mutation::StrategyName(at, name) => {
            if let Some(p) = pick(at, &in_list("strategies")) {
                if let Some(Value::Object(s)) = node_mut(doc, &p) {
                    s.insert("name".into(), json!(STRATEGIES[*name]));
                }
            }
        }
        Mutation::Parameter(at, key, value) => {
            if let Some(p) = pick(at, &in_list("strategies")) {
                if let Some(Value::Object(s)) = node_mut(doc, &p) {
                    let params = s.entry("parameters").or_insert_with(|| json!({}));
                    if let Value::Object(params) = params {
                        params.insert(PARAMETERS[*key].into(), value.to_value());
                    }
                }
            }
        }
        Mutation::Depend(at, on) => {
            if let Some(child) = pick(at, &flag) {
                let parent = match on {
                    Some(on) => pick(on, &flag)
                        .and_then(|p| node(doc, &p).and_then(|f| f.get("name")).cloned())
                        .unwrap_or(Value::Null),
                    None => json!("no-such-parent"),
                };
                if let Some(Value::Object(f)) = node_mut(doc, &child) {
                    let deps = f.entry("dependencies").or_insert_with(|| json!([]));
                    if let Value::Array(deps) = deps {
                        deps.push(json!({"feature": parent, "enabled": true}));
                    }
                }
            }
        }
        Mutation::SegmentRef(at, id) => {
            if let Some(p) = pick(at, &in_list("strategies")) {
                if let Some(Value::Object(s)) = node_mut(doc, &p) {
                    let refs = s.entry("segments").or_insert_with(|| json!([]));
                    if let Value::Array(refs) = refs {
                        refs.push(json!(INTEGERS[id % INTEGERS.len()]));
                    }
                }
            }
        }
        Mutation::Weights(at, weights) => {
            if let Some(p) = pick(at, &|p, v| {
                v.is_array() && matches!(p.last(), Some(Seg::Key(k)) if k == "variants")
            }) {
                if let Some(Value::Array(variants)) = node_mut(doc, &p) {
                    for (v, w) in variants.iter_mut().zip(weights.iter().cycle()) {
                        if let Value::Object(v) = v {
                            v.insert("weight".into(), json!(INTEGERS[w % INTEGERS.len()]));
                        }
                    }
                }
            }
        }
    }
}

/// Applies a byte mutation.
pub fn apply_bytes(bytes: &mut Vec<u8>, mutation: &ByteMutation) {
    let len = bytes.len();
    let at = |i: &Index| if len == 0 { 0 } else { i.index(len) };
    match mutation {
        ByteMutation::FlipBit(i, bit) if len > 0 => bytes[at(i)] ^= 1 << bit,
        ByteMutation::SetByte(i, b) if len > 0 => bytes[at(i)] = BYTES[*b],
        ByteMutation::Insert(i, t) => {
            let at = at(i);
            bytes.splice(at..at, INSERTS[*t].iter().copied());
        }
        ByteMutation::Delete(i, n) => {
            let at = at(i);
            bytes.drain(at..(at + n).min(len));
        }
        ByteMutation::Truncate(i) => bytes.truncate(at(i)),
        ByteMutation::DuplicateRange(i, n) => {
            let at = at(i);
            let range: Vec<u8> = bytes[at..(at + n).min(len)].to_vec();
            bytes.splice(at..at, range);
        }
        _ => {}
    }
}

/// The document a case starts from.
#[derive(Debug, Clone)]
pub enum Start {
    /// A corpus document.
    Corpus(usize),
    /// A random value as the whole document.
    Root(Hostile),
    /// A random value as the flag list.
    Features(Hostile),
}

/// One input: a document to start from, the configuration loaded before
/// it, its mutations, and the seed of the contexts evaluated after.
#[derive(Debug, Clone)]
pub struct Case {
    pub start: Start,
    /// The corpus payload loaded before (`None`: the start's, or the first).
    pub base: Option<usize>,
    pub mutations: Vec<Mutation>,
    pub bytes: Vec<ByteMutation>,
    pub contexts: u64,
}

impl Case {
    /// The corpus payload loaded before this case's.
    pub fn base(&self) -> usize {
        match (self.base, &self.start) {
            (Some(b), _) | (None, &Start::Corpus(b)) => b,
            (None, _) => 0,
        }
    }

    /// The payload bytes, and the document before its byte mutations.
    pub fn build(&self, corpus: &[Value]) -> (Vec<u8>, Value) {
        let mut doc = match &self.start {
            Start::Corpus(i) => corpus[*i].clone(),
            Start::Root(h) => h.to_value(),
            Start::Features(h) => {
                let mut m = Map::new();
                m.insert("version".into(), json!(2));
                m.insert("features".into(), h.to_value());
                Value::Object(m)
            }
        };
        let mut unique = 0;
        for m in &self.mutations {
            apply(&mut doc, m, corpus, &mut unique);
        }
        let mut bytes = to_bytes(&doc);
        for m in &self.bytes {
            apply_bytes(&mut bytes, m);
        }
        (bytes, doc)
    }

    /// Class names of what this case tries.
    pub fn classes(&self) -> Vec<&'static str> {
        let mut classes = vec![match &self.start {
            Start::Corpus(_) if self.mutations.is_empty() && self.bytes.is_empty() => {
                "corpus payload as it is"
            }
            Start::Corpus(_) => "mutated corpus payload",
            Start::Root(_) => "random document",
            Start::Features(_) => "random flag list",
        }];
        if let Start::Root(h) | Start::Features(h) = &self.start {
            classes.push(h.class());
        }
        for m in &self.mutations {
            classes.push(m.class());
            classes.extend(m.hostile().map(Hostile::class));
            if let Mutation::Operator { operands, .. } = m {
                classes.push(Hostile::Text(*operands, 0).class());
            }
        }
        classes.extend(self.bytes.iter().map(ByteMutation::class));
        classes
    }
}

/// Cases over a corpus of `corpus_len` documents.
pub fn case(corpus_len: usize) -> impl Strategy<Value = Case> {
    let start = prop_oneof![
        16 => (0..corpus_len).prop_map(Start::Corpus),
        1 => hostile().prop_map(Start::Root),
        1 => hostile().prop_map(Start::Features),
    ];
    (
        start,
        prop::option::weighted(0.3, 0..corpus_len),
        prop::collection::vec(mutation(corpus_len), 0..8),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => prop::collection::vec(byte_mutation(), 1..4),
        ],
        any::<u64>(),
    )
        .prop_map(|(start, base, mutations, bytes, contexts)| Case {
            start,
            base,
            mutations,
            bytes,
            contexts,
        })
}

fn paths(doc: &Value) -> Vec<Vec<Seg>> {
    fn walk(v: &Value, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        if out.len() >= MAX_NODES {
            return;
        }
        out.push(path.clone());
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Seg::At(i));
                    walk(item, path, out);
                    path.pop();
                }
            }
            Value::Object(members) => {
                for (k, item) in members {
                    path.push(Seg::Key(k.clone()));
                    walk(item, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, &mut Vec::new(), &mut out);
    out
}

fn node<'a>(doc: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, seg| match seg {
        Seg::Key(k) => v.get(k),
        Seg::At(i) => v.get(i),
    })
}

fn node_mut<'a>(doc: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(doc, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k),
        Seg::At(i) => v.get_mut(i),
    })
}

fn set(doc: &mut Value, path: &[Seg], value: Value) {
    if let Some(slot) = node_mut(doc, path) {
        *slot = value;
    }
}

fn remove(doc: &mut Value, path: &[Seg]) {
    let (last, parent) = path.split_last().expect("not the root");
    match (node_mut(doc, parent), last) {
        (Some(Value::Object(m)), Seg::Key(k)) => {
            m.remove(k);
        }
        (Some(Value::Array(items)), Seg::At(i)) if *i < items.len() => {
            items.remove(*i);
        }
        _ => {}
    }
}
