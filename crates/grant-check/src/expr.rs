//! Typing conditions, and resolving bare names: a bare identifier is an
//! attribute when one is declared under that name, otherwise a variant of the
//! enum the context expects (the other side of a comparison, the needle or
//! elements of `in`).

use grant_syntax::Span;
use grant_syntax::ast::{self, CompareOp, ExprKind as Ast};
use grant_syntax::diagnostic::{Code, Diagnostic};

use crate::Checker;
use crate::fnv::FnvMap;
use crate::ir::{Expr, ExprKind, Ordering, Scalar, Type, TypeId, Value};
use crate::suggest;

/// An expression and its type.
type Typed = (Expr, Type);

impl Checker<'_> {
    /// Checks `expr` and requires type `expected`.
    pub(crate) fn expect(&mut self, expr: &ast::Expr, expected: Type) -> Option<Expr> {
        let (typed, ty) = self.infer(expr, Some(expected))?;
        if ty != expected {
            let found = self.scope.type_name(ty);
            let wanted = self.scope.type_name(expected);
            let mut diagnostic = Diagnostic::new(
                Code::TypeMismatch,
                expr.span,
                format!("expected `{wanted}`, found `{found}`"),
            )
            .label(format!("this is `{found}`"));
            if let Some(help) = self.quoted_variant_help(expr, expected) {
                diagnostic = diagnostic.help(help);
            }
            self.report(diagnostic);
            return None;
        }
        Some(typed)
    }

    /// Help for a string literal where an enum is expected (`env ==
    /// "prod"`): variants are names, written without quotes.
    fn quoted_variant_help(&self, expr: &ast::Expr, expected: Type) -> Option<String> {
        let (Ast::Str(text), Type::Scalar(Scalar::Enum(id))) = (&expr.kind, expected) else {
            return None;
        };
        let enum_type = self.scope.enum_type(id)?;
        Some(if enum_type.ordinal(text).is_some() {
            format!(
                "`{}` is an enum: write its variant without quotes, `{text}`",
                enum_type.name
            )
        } else {
            const SHOWN: usize = 8;
            let mut variants: Vec<&str> = enum_type
                .variants
                .iter()
                .take(SHOWN)
                .map(String::as_str)
                .collect();
            if enum_type.variants.len() > SHOWN {
                variants.push("...");
            }
            format!(
                "`{}` is an enum: write one of its variants without quotes ({})",
                enum_type.name,
                variants.join(", ")
            )
        })
    }

    /// Types `expr`; `expected` resolves bare variants and lists.
    fn infer(&mut self, expr: &ast::Expr, expected: Option<Type>) -> Option<Typed> {
        let span = expr.span;
        let constant = |value: Value, ty: Type| {
            Some((
                Expr {
                    kind: ExprKind::Const(value),
                    span,
                },
                ty,
            ))
        };
        match &expr.kind {
            Ast::Bool(b) => constant(Value::Bool(*b), Type::BOOL),
            Ast::Int(i) => constant(Value::Int(*i), Type::INT),
            Ast::Str(s) => constant(Value::String(s.clone()), Type::STRING),
            Ast::Duration(d) => constant(Value::Duration(*d), Type::DURATION),
            Ast::List(items) => match expected {
                Some(Type::Set(element)) => {
                    let values = self.list_values(items, element)?;
                    constant(Value::Set(values), Type::Set(element))
                }
                _ => {
                    self.report(list_not_allowed(span));
                    None
                }
            },
            Ast::Path(path) => self.path(path, expected),
            Ast::Variant { ty, variant } => self.qualified_variant(ty, variant),
            Ast::Not(operand) => {
                let operand = self.expect(operand, Type::BOOL)?;
                Some((
                    Expr {
                        kind: ExprKind::Not(Box::new(operand)),
                        span,
                    },
                    Type::BOOL,
                ))
            }
            Ast::And(operands) | Ast::Or(operands) => {
                // Check every operand, so that all their errors are reported.
                let typed: Vec<Option<Expr>> = operands
                    .iter()
                    .map(|o| self.expect(o, Type::BOOL))
                    .collect();
                let typed: Vec<Expr> = typed.into_iter().collect::<Option<_>>()?;
                let kind = if matches!(expr.kind, Ast::And(_)) {
                    ExprKind::And(typed)
                } else {
                    ExprKind::Or(typed)
                };
                Some((Expr { kind, span }, Type::BOOL))
            }
            Ast::Compare { op, lhs, rhs } => {
                let kind = match op.value {
                    CompareOp::In => self.membership(lhs, rhs)?,
                    CompareOp::Matches => self.matches(lhs, rhs)?,
                    CompareOp::Eq => self.comparison(Ordering::Eq, op.span, lhs, rhs)?,
                    CompareOp::Ne => self.comparison(Ordering::Ne, op.span, lhs, rhs)?,
                    CompareOp::Lt => self.comparison(Ordering::Lt, op.span, lhs, rhs)?,
                    CompareOp::Le => self.comparison(Ordering::Le, op.span, lhs, rhs)?,
                    CompareOp::Gt => self.comparison(Ordering::Gt, op.span, lhs, rhs)?,
                    CompareOp::Ge => self.comparison(Ordering::Ge, op.span, lhs, rhs)?,
                };
                Some((Expr { kind, span }, Type::BOOL))
            }
        }
    }

    fn is_attr(&self, path: &ast::Path) -> bool {
        self.scope.attrs.contains_key(&path.name)
    }

    /// A bare name that is not an attribute, or a list: its type comes from
    /// the context.
    fn needs_context(&self, expr: &ast::Expr) -> bool {
        match &expr.kind {
            Ast::Path(path) => path.is_bare() && !self.is_attr(path),
            Ast::List(_) => true,
            _ => false,
        }
    }

    fn path(&mut self, path: &ast::Path, expected: Option<Type>) -> Option<Typed> {
        let span = path.span;
        if let Some(&(_, id)) = self.scope.attrs.get(&path.name) {
            if expected.is_some_and(|expected| self.check_ambiguous_path(path, expected)) {
                return None;
            }
            // A declaration whose type did not resolve was reported already.
            let id = id?;
            let ty = self.scope.attr(id)?.ty;
            if let Some(used) = self.scope.used_attrs.get_mut(id.0 as usize) {
                *used = true;
            }
            return Some((
                Expr {
                    kind: ExprKind::Attr(id),
                    span,
                },
                ty,
            ));
        }
        if path.is_bare() {
            if let Some(Type::Scalar(Scalar::Enum(id))) = expected
                && let Some(ordinal) = self.scope.enum_type(id).and_then(|t| t.ordinal(&path.name))
            {
                let ty = Type::Scalar(Scalar::Enum(id));
                return Some((
                    Expr {
                        kind: ExprKind::Const(Value::Enum(ordinal)),
                        span,
                    },
                    ty,
                ));
            }
            self.report(self.unknown_name(path, expected));
            return None;
        }
        let mut diagnostic = Diagnostic::new(
            Code::UnknownAttribute,
            span,
            format!("attribute `{}` is not declared", path.name),
        )
        .label("undeclared attribute");
        diagnostic = match self
            .suggester
            .closest(&path.name, self.scope.attrs.keys().map(String::as_str))
        {
            Some(close) => diagnostic.help(format!("did you mean `{close}`?")),
            None => diagnostic.help(format!("declare it: `attr {}: <type>`", path.name)),
        };
        self.report(diagnostic);
        None
    }

    fn unknown_name(&self, path: &ast::Path, expected: Option<Type>) -> Diagnostic {
        let name = &path.name;
        if let Some(Type::Scalar(Scalar::Enum(id))) = expected {
            let variants: &[String] = self
                .scope
                .enum_type(id)
                .map_or(&[], |t| t.variants.as_slice());
            let type_name = self.scope.type_name(Type::Scalar(Scalar::Enum(id)));
            let candidates = variants
                .iter()
                .map(String::as_str)
                .chain(self.scope.attrs.keys().map(String::as_str));
            let diagnostic = Diagnostic::new(
                Code::UnknownName,
                path.span,
                format!("`{name}` is neither an attribute nor a variant of `{type_name}`"),
            )
            .label("unknown name");
            return match self.suggester.closest(name, candidates) {
                Some(close) => diagnostic.help(format!("did you mean `{close}`?")),
                None => diagnostic.help(format!(
                    "`{type_name}` has variants {}",
                    suggest::list(variants.iter().map(String::as_str), ", ")
                )),
            };
        }
        let owners = self
            .variant_owners()
            .get(name.as_str())
            .map_or(&[][..], Vec::as_slice);
        if !owners.is_empty() {
            let qualified: Vec<String> = owners
                .iter()
                .filter_map(|&id| self.scope.enum_type(id))
                .map(|t| format!("{}::{name}", t.name))
                .collect();
            return Diagnostic::new(
                Code::UnknownName,
                path.span,
                format!("cannot tell which enum `{name}` belongs to"),
            )
            .label("no enum is expected here")
            .help(format!(
                "write the qualified form: {}",
                suggest::list(qualified.iter().map(String::as_str), " or ")
            ));
        }
        if self.scope.types.contains_key(name) {
            return Diagnostic::new(
                Code::UnknownName,
                path.span,
                format!("`{name}` is a type, not an attribute"),
            )
            .label("a type name")
            .help(format!(
                "declare an attribute of this type: `attr {name}: {name}`"
            ));
        }
        let mut candidates: Vec<&str> = self.scope.attrs.keys().map(String::as_str).collect();
        candidates.extend(
            self.scope
                .types
                .values()
                .flat_map(|t| t.variants.iter().map(String::as_str)),
        );
        let diagnostic = Diagnostic::new(
            Code::UnknownName,
            path.span,
            format!("unknown name `{name}`"),
        )
        .label("not an attribute or a variant");
        match self.suggester.closest(name, candidates) {
            Some(close) => diagnostic.help(format!("did you mean `{close}`?")),
            None => diagnostic.help(format!("declare it: `attr {name}: <type>`")),
        }
    }

    /// The enums that list each variant name, built at the first bare
    /// name no enum is expected for: one pass over the declarations, not
    /// one per such name.
    fn variant_owners(&self) -> &FnvMap<Box<str>, Vec<TypeId>> {
        self.variant_owners.get_or_init(|| {
            let mut owners: FnvMap<Box<str>, Vec<TypeId>> = FnvMap::default();
            for (i, t) in self.scope.types.values().enumerate() {
                for variant in &t.variants {
                    owners
                        .entry(variant.as_str().into())
                        .or_default()
                        .push(TypeId(i as u32));
                }
            }
            owners
        })
    }

    /// A bare name that is an attribute and also a variant of the enum
    /// expected where it stands.
    /// Reports and returns true when ambiguous.
    fn check_ambiguous_path(&mut self, path: &ast::Path, expected: Type) -> bool {
        let Type::Scalar(Scalar::Enum(id)) = expected else {
            return false;
        };
        if !path.is_bare() {
            return false;
        }
        let Some(enum_type) = self.scope.enum_type(id) else {
            return false;
        };
        let ambiguous = enum_type.ordinal(&path.name).is_some();
        if ambiguous {
            let qualified = format!("{}::{}", enum_type.name, path.name);
            self.report(
                Diagnostic::new(
                    Code::AmbiguousName,
                    path.span,
                    format!(
                        "`{}` is both an attribute and a variant of `{}`",
                        path.name, enum_type.name
                    ),
                )
                .label("ambiguous")
                .help(format!("write `{qualified}` for the variant")),
            );
        }
        ambiguous
    }

    /// Reports and returns true when `expr` is an attribute's bare name that
    /// is also a variant of `other`.
    fn check_ambiguous(&mut self, expr: &ast::Expr, other: Type) -> bool {
        match &expr.kind {
            Ast::Path(path) if self.is_attr(path) => self.check_ambiguous_path(path, other),
            _ => false,
        }
    }

    fn qualified_variant(&mut self, ty: &ast::Ident, variant: &ast::Ident) -> Option<Typed> {
        let span = ty.span.to(variant.span);
        let Some(id) = self.scope.type_id(&ty.value) else {
            let mut diagnostic = Diagnostic::new(
                Code::UnknownType,
                ty.span,
                format!("unknown type `{}`", ty.value),
            )
            .label("not a declared enum");
            if let Some(close) = self
                .suggester
                .closest(&ty.value, self.scope.types.keys().map(String::as_str))
            {
                diagnostic = diagnostic.help(format!("did you mean `{close}`?"));
            }
            self.report(diagnostic);
            return None;
        };
        if let Some(used) = self.scope.used_types.get_mut(id.0 as usize) {
            *used = true;
        }
        let enum_type = self.scope.enum_type(id)?;
        match enum_type.ordinal(&variant.value) {
            Some(ordinal) => Some((
                Expr {
                    kind: ExprKind::Const(Value::Enum(ordinal)),
                    span,
                },
                Type::Scalar(Scalar::Enum(id)),
            )),
            None => {
                let help = match self.suggester.closest(
                    &variant.value,
                    enum_type.variants.iter().map(String::as_str),
                ) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!(
                        "`{}` has variants {}",
                        enum_type.name,
                        suggest::list(enum_type.variants.iter().map(String::as_str), ", ")
                    ),
                };
                let message = format!("`{}` has no variant `{}`", enum_type.name, variant.value);
                self.report(
                    Diagnostic::new(Code::UnknownVariant, variant.span, message)
                        .label("unknown variant")
                        .help(help),
                );
                None
            }
        }
    }

    /// Types both sides of a comparison; a side that needs context takes the
    /// other side's type.
    fn operands(&mut self, lhs: &ast::Expr, rhs: &ast::Expr) -> Option<(Typed, Typed)> {
        let (lhs_needs, rhs_needs) = (self.needs_context(lhs), self.needs_context(rhs));
        if lhs_needs && rhs_needs {
            self.report(self.no_context(lhs));
            return None;
        }
        // Type the side that stands alone first.
        let swapped = lhs_needs;
        let (first, second) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
        let first_typed = self.infer(first, None);
        let second_typed = match &first_typed {
            Some((_, ty)) => self.infer(second, Some(*ty)),
            // Without the first side's type, a side that needs it would only
            // produce a follow-on error.
            None if self.needs_context(second) => None,
            None => self.infer(second, None),
        };
        let (first_typed, second_typed) = (first_typed?, second_typed?);
        if self.check_ambiguous(first, second_typed.1) {
            return None;
        }
        Some(if swapped {
            (second_typed, first_typed)
        } else {
            (first_typed, second_typed)
        })
    }

    fn no_context(&self, expr: &ast::Expr) -> Diagnostic {
        match &expr.kind {
            Ast::Path(path) => self.unknown_name(path, None),
            _ => list_not_allowed(expr.span),
        }
    }

    fn comparison(
        &mut self,
        op: Ordering,
        op_span: Span,
        lhs: &ast::Expr,
        rhs: &ast::Expr,
    ) -> Option<ExprKind> {
        let ((lhs_typed, lhs_ty), (rhs_typed, rhs_ty)) = self.operands(lhs, rhs)?;
        if lhs_ty != rhs_ty {
            let (l, r) = (self.scope.type_name(lhs_ty), self.scope.type_name(rhs_ty));
            let mut diagnostic = Diagnostic::new(
                Code::TypeMismatch,
                op_span,
                format!(
                    "`{}` compares values of one type, found `{l}` and `{r}`",
                    op.as_str()
                ),
            )
            .label("compared here")
            .secondary(lhs.span, format!("this is `{l}`"))
            .secondary(rhs.span, format!("this is `{r}`"));
            if [lhs_ty, rhs_ty].contains(&Type::DURATION) && [lhs_ty, rhs_ty].contains(&Type::INT) {
                diagnostic = diagnostic.help("write durations with a unit, like `90s` or `5m`");
            }
            let quoted = self
                .quoted_variant_help(rhs, lhs_ty)
                .or_else(|| self.quoted_variant_help(lhs, rhs_ty));
            if let Some(help) = quoted {
                diagnostic = diagnostic.help(help);
            }
            self.report(diagnostic);
            return None;
        }
        if !matches!(op, Ordering::Eq | Ordering::Ne) && !self.is_ordered(lhs_ty) {
            let name = self.scope.type_name(lhs_ty);
            let mut diagnostic = Diagnostic::new(
                Code::NotOrdered,
                op_span,
                format!(
                    "`{}` needs `int`, `duration` or an ordered enum, found `{name}`",
                    op.as_str()
                ),
            )
            .label(format!("`{name}` has no order"));
            if let Type::Scalar(Scalar::Enum(id)) = lhs_ty
                && let Some(t) = self.scope.enum_type(id).filter(|t| t.variants.len() > 1)
            {
                diagnostic = diagnostic
                        .secondary(t.span, "declared without an order here")
                        .help(if t.variants.len() <= 8 {
                            format!(
                                "declare it with `<` to order it: `type {} = {}`",
                                t.name,
                                t.variants.join(" < ")
                            )
                        } else {
                            format!("declare it with `<` between its variants to order it: `type {} = a < b < ...`", t.name)
                        });
            }
            self.report(diagnostic);
            return None;
        }
        Some(ExprKind::Compare {
            op,
            lhs: Box::new(lhs_typed),
            rhs: Box::new(rhs_typed),
            operand_type: lhs_ty,
        })
    }

    fn is_ordered(&self, ty: Type) -> bool {
        match ty {
            Type::Scalar(Scalar::Int | Scalar::Duration) => true,
            Type::Scalar(Scalar::Enum(id)) => self.scope.enum_type(id).is_some_and(|t| t.ordered),
            _ => false,
        }
    }

    /// `x in [..]` and `x in set_attr`.
    fn membership(&mut self, needle: &ast::Expr, haystack: &ast::Expr) -> Option<ExprKind> {
        if let Ast::List(items) = &haystack.kind {
            if items.is_empty() {
                self.report(
                    Diagnostic::new(
                        Code::EmptyList,
                        haystack.span,
                        "`in` an empty list is never true",
                    )
                    .label("empty list")
                    .help("list at least one value"),
                );
                return None;
            }
            let (needle_typed, element) = if self.needs_context(needle) {
                // The needle is a bare variant: the elements name its enum.
                let element_ty = items
                    .iter()
                    .filter(|item| !self.needs_context(item))
                    .find_map(|item| self.standalone_type(item));
                let Some(element_ty) = element_ty else {
                    self.report(self.no_context(needle));
                    return None;
                };
                self.infer(needle, Some(element_ty))?
            } else {
                self.infer(needle, None)?
            };
            let Type::Scalar(element) = element else {
                let name = self.scope.type_name(element);
                self.report(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        needle.span,
                        format!("`in` looks for one value, found `{name}`"),
                    )
                    .label(format!("this is `{name}`"))
                    .help("test one value: `\"pci\" in task.labels`"),
                );
                return None;
            };
            let list = self.list_values(items, element)?;
            return Some(ExprKind::InList {
                needle: Box::new(needle_typed),
                list,
            });
        }
        if self.needs_context(haystack) {
            self.report(self.no_context(haystack));
            return None;
        }
        let (set_typed, set_ty) = self.infer(haystack, None)?;
        let Type::Set(element) = set_ty else {
            let name = self.scope.type_name(set_ty);
            self.report(
                Diagnostic::new(
                    Code::TypeMismatch,
                    haystack.span,
                    format!(
                        "`in` needs a list or a `set<..>` attribute on the right, found `{name}`"
                    ),
                )
                .label(format!("this is `{name}`"))
                .help("write a list, like `env in [dev, staging]`"),
            );
            return None;
        };
        let (needle_typed, needle_ty) = self.infer(needle, Some(Type::Scalar(element)))?;
        if needle_ty != Type::Scalar(element) {
            let found = self.scope.type_name(needle_ty);
            let holds = self.scope.type_name(Type::Scalar(element));
            self.report(
                Diagnostic::new(
                    Code::TypeMismatch,
                    needle.span,
                    format!("`in` looks for a `{holds}` in this set, found `{found}`"),
                )
                .label(format!("this is `{found}`"))
                .secondary(haystack.span, format!("this set holds `{holds}`")),
            );
            return None;
        }
        Some(ExprKind::InSet {
            needle: Box::new(needle_typed),
            set: Box::new(set_typed),
        })
    }

    /// The type of a literal or qualified variant, without reporting.
    fn standalone_type(&self, expr: &ast::Expr) -> Option<Type> {
        match &expr.kind {
            Ast::Bool(_) => Some(Type::BOOL),
            Ast::Int(_) => Some(Type::INT),
            Ast::Str(_) => Some(Type::STRING),
            Ast::Duration(_) => Some(Type::DURATION),
            Ast::Variant { ty, .. } => self
                .scope
                .type_id(&ty.value)
                .map(|id: TypeId| Type::Scalar(Scalar::Enum(id))),
            _ => None,
        }
    }

    /// The values of a list literal whose elements have type `element`:
    /// sorted, without duplicates.
    fn list_values(&mut self, items: &[ast::Expr], element: Scalar) -> Option<Vec<Value>> {
        let expected = Type::Scalar(element);
        let mut values = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match self.expect(item, expected) {
                Some(Expr {
                    kind: ExprKind::Const(value),
                    ..
                }) => values.push(value),
                Some(_) => {
                    self.report(
                        Diagnostic::new(
                            Code::ListNotAllowed,
                            item.span,
                            "a list holds literals and variants, not attributes",
                        )
                        .label("an attribute"),
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        values.sort();
        values.dedup();
        Some(values)
    }

    fn matches(&mut self, subject: &ast::Expr, glob: &ast::Expr) -> Option<ExprKind> {
        let subject_typed = self.infer(subject, Some(Type::STRING));
        let Ast::Str(glob) = &glob.kind else {
            self.report(
                Diagnostic::new(
                    Code::InvalidMatches,
                    glob.span,
                    "`matches` takes a string literal on the right",
                )
                .label("not a string literal")
                .help("write the pattern in quotes: `agent.workload matches \"spiffe://prod/*\"`"),
            );
            return None;
        };
        let (subject_typed, ty) = subject_typed?;
        if ty != Type::STRING {
            let name = self.scope.type_name(ty);
            self.report(
                Diagnostic::new(
                    Code::InvalidMatches,
                    subject.span,
                    format!("`matches` needs a `string` on the left, found `{name}`"),
                )
                .label(format!("this is `{name}`")),
            );
            return None;
        }
        Some(ExprKind::Matches {
            subject: Box::new(subject_typed),
            glob: glob.clone(),
        })
    }
}

fn list_not_allowed(span: Span) -> Diagnostic {
    Diagnostic::new(Code::ListNotAllowed, span, "a list cannot stand here")
        .label("list")
        .help("lists go on the right of `in`, or beside a `set<..>` attribute in `==` and `!=`")
}
