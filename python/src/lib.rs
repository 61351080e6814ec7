//! `riskserve._native`: the scoring core, pipelines and the command line, for the Python package. Scoring releases
//! the GIL; a C-contiguous float64 array is read in place (no copy) by a bare numeric model.

use std::borrow::Cow;
use std::collections::HashMap;

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};
use riskserve_model::ir::FeatureKind;
use riskserve_model::{Format, Predictor};
use riskserve_pipeline::{Cell, FieldType, Outcome, Pipeline, ScoreOptions};

create_exception!(_native, ModelLoadError, PyValueError, "A model file or pipeline that does not load.");
create_exception!(
    _native,
    RowsError,
    PyValueError,
    "Rows that fail the model's or pipeline's schema; args[1] lists (row, field, message)."
);

/// An input field as Python sees it: (name, kind, required, categories, description).
type FieldDescription = (String, &'static str, bool, Vec<String>, Option<String>);

/// A loaded model or pipeline: immutable, shared by every thread that scores with it.
#[pyclass(frozen, module = "riskserve._native")]
struct Scorer {
    pipeline: Pipeline,
    /// A bare model whose inputs are all numeric also scores arrays directly, without cells.
    predictor: Option<Predictor>,
    bare: bool,
}

fn parse_format(format: Option<&str>) -> PyResult<Option<Format>> {
    Ok(match format {
        None => None,
        Some("xgboost-json") => Some(Format::XgboostJson),
        Some("xgboost-ubj") => Some(Format::XgboostUbj),
        Some("lightgbm") => Some(Format::Lightgbm),
        Some("onnx") => Some(Format::Onnx),
        Some("pmml") => Some(Format::Pmml),
        Some(other) => {
            return Err(PyValueError::new_err(format!(
                "unknown format {other:?}: expected xgboost-json, xgboost-ubj, lightgbm, onnx or pmml"
            )));
        }
    })
}

fn field_kind(kind: &FieldType) -> &'static str {
    match kind {
        FieldType::Numeric => "numeric",
        FieldType::Categorical => "categorical",
        FieldType::Boolean => "boolean",
    }
}

/// One column of cells taken from Python while holding the GIL, so that scoring can run without it.
enum Column<'py> {
    Numbers(PyReadonlyArray1<'py, f64>),
    Cells(Vec<Cell<'static>>),
}

fn cell_of(item: &Bound<'_, PyAny>) -> PyResult<Cell<'static>> {
    if item.is_none() {
        return Ok(Cell::Missing);
    }
    // bool before int: Python's bool is an int.
    if item.is_instance_of::<PyBool>() {
        return Ok(Cell::Bool(item.extract()?));
    }
    if item.is_instance_of::<PyFloat>() || item.is_instance_of::<PyInt>() {
        let value: f64 = item.extract()?;
        return Ok(if value.is_nan() { Cell::Missing } else { Cell::Number(value) });
    }
    if item.is_instance_of::<PyString>() {
        return Ok(Cell::Text(Cow::Owned(item.extract::<String>()?)));
    }
    // numpy scalars (np.float32, np.int64, np.bool_) and the like.
    if let Ok(value) = item.extract::<f64>() {
        return Ok(if value.is_nan() { Cell::Missing } else { Cell::Number(value) });
    }
    Err(PyTypeError::new_err(format!(
        "a cell must be a number, a string, a boolean or None, not {}",
        item.get_type().name()?
    )))
}

fn column_of<'py>(object: &Bound<'py, PyAny>, rows: usize, name: &str) -> PyResult<Column<'py>> {
    if let Ok(array) = object.extract::<PyReadonlyArray1<'py, f64>>() {
        if array.len() != rows {
            return Err(PyValueError::new_err(format!("column {name:?} has {} values, not {rows}", array.len())));
        }
        return Ok(Column::Numbers(array));
    }
    let list = object
        .cast::<PyList>()
        .map_err(|_| PyTypeError::new_err(format!("column {name:?} must be a float64 array or a list")))?;
    if list.len() != rows {
        return Err(PyValueError::new_err(format!("column {name:?} has {} values, not {rows}", list.len())));
    }
    list.iter().map(|item| cell_of(&item)).collect::<PyResult<Vec<_>>>().map(Column::Cells)
}

fn rows_error(errors: Vec<riskserve_pipeline::RowError>) -> PyErr {
    let first = errors.first().map(ToString::to_string).unwrap_or_default();
    let message = if errors.len() > 1 { format!("{first} (and {} more)", errors.len() - 1) } else { first };
    let details: Vec<(usize, String, String)> =
        errors.into_iter().map(|error| (error.row, error.field, error.message)).collect();
    RowsError::new_err((message, details))
}

#[pymethods]
impl Scorer {
    /// A bare model from its file's bytes; the format is detected unless given.
    #[staticmethod]
    #[pyo3(signature = (data, format=None))]
    fn from_model(py: Python<'_>, data: Vec<u8>, format: Option<&str>) -> PyResult<Scorer> {
        let format = parse_format(format)?;
        py.detach(|| {
            let model = riskserve_model::load_model(&data, format).map_err(|error| error.to_string())?;
            // Category names need cells; codes (and numbers) go into an array as they are.
            let numeric = model.inputs.iter().all(|input| {
                !matches!(&input.kind, FeatureKind::Categorical { categories: Some(names), .. } if !names.is_empty())
            });
            let predictor = if numeric {
                let predictor = Predictor::new(model.clone()).map_err(|error| error.to_string())?;
                predictor.scorecard().is_none().then_some(predictor)
            } else {
                None
            };
            let pipeline = Pipeline::from_model(model).map_err(|error| error.to_string())?;
            Ok(Scorer { pipeline, predictor, bare: true })
        })
        .map_err(|message: String| ModelLoadError::new_err(message))
    }

    /// A pipeline from its spec (JSON) and the bytes of the model files it names.
    #[staticmethod]
    fn from_pipeline(py: Python<'_>, spec: Vec<u8>, artifacts: HashMap<String, Vec<u8>>) -> PyResult<Scorer> {
        py.detach(|| {
            let mut load = |name: &str| {
                artifacts.get(name).cloned().ok_or_else(|| format!("no model file named {name:?} was given"))
            };
            Pipeline::from_spec(&spec, &mut load).map_err(|error| error.to_string())
        })
        .map(|pipeline| Scorer { pipeline, predictor: None, bare: false })
        .map_err(ModelLoadError::new_err)
    }

    /// The names of the model files a pipeline spec references.
    #[staticmethod]
    fn artifact_names(spec: Vec<u8>) -> PyResult<Vec<String>> {
        Pipeline::artifact_names(&spec).map_err(|error| ModelLoadError::new_err(error.to_string()))
    }

    /// The input fields in positional order: (name, kind, required, categories, description).
    #[getter]
    fn fields(&self) -> Vec<FieldDescription> {
        self.pipeline
            .fields()
            .iter()
            .map(|field| {
                (
                    field.name.clone(),
                    field_kind(&field.kind),
                    field.required,
                    field.categories.clone(),
                    field.description.clone(),
                )
            })
            .collect()
    }

    /// The answer's columns: a bare model's value columns, else those of probability, score, grade and decision.
    #[getter]
    fn output_columns(&self) -> Vec<String> {
        self.pipeline.output_columns()
    }

    /// Whether this is a bare model (no pipeline spec).
    #[getter]
    fn bare(&self) -> bool {
        self.bare
    }

    /// Whether [`Scorer::predict_array`] is available (a bare model with numeric inputs only).
    #[getter]
    fn takes_arrays(&self) -> bool {
        self.predictor.is_some()
    }

    /// Scores a C-contiguous float64 array of shape (rows, inputs) in place, on `threads` threads, without the GIL;
    /// NaN is a missing value. Answers an array of shape (rows, values).
    #[pyo3(signature = (rows, threads=1))]
    fn predict_array<'py>(
        &self,
        py: Python<'py>,
        rows: PyReadonlyArray2<'py, f64>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let Some(predictor) = &self.predictor else {
            return Err(PyTypeError::new_err("this model takes cells, not arrays: use score_columns"));
        };
        let [num_rows, width] = [rows.shape()[0], rows.shape()[1]];
        if width != predictor.num_inputs() {
            return Err(PyValueError::new_err(format!(
                "the array has {width} columns; the model takes {}",
                predictor.num_inputs()
            )));
        }
        let values = predictor.num_values();
        let input = rows.as_slice().map_err(|_| PyValueError::new_err("the array must be C-contiguous"))?;
        let mut out = vec![0.0; num_rows * values];
        py.detach(|| predictor.predict_batch(input, &mut out, threads)).map_err(|error| {
            let details = vec![(error.row, String::new(), error.error.to_string())];
            RowsError::new_err((error.to_string(), details))
        })?;
        PyArray1::from_vec(py, out).reshape([num_rows, values])
    }

    /// Scores rows given as one column per field (a float64 array, or a list of numbers, strings, booleans and
    /// None), without the GIL. Answers a dict: `values` (array rows × values) and, as the pipeline produces them,
    /// `probability`, `score` (float64 arrays), `grade`, `decision` (lists); with `explain`, `contribution_names`,
    /// `contributions` (array rows × names, the last name `bias`) and `reasons` (per row, a list of (code, feature,
    /// text, contribution)).
    #[pyo3(signature = (columns, num_rows, explain=false, top_reasons=4))]
    fn score_columns<'py>(
        &self,
        py: Python<'py>,
        columns: Vec<Bound<'py, PyAny>>,
        num_rows: usize,
        explain: bool,
        top_reasons: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let fields = self.pipeline.fields();
        if columns.len() != fields.len() {
            return Err(PyValueError::new_err(format!("expected {} columns, got {}", fields.len(), columns.len())));
        }
        let columns: Vec<Column<'py>> = columns
            .iter()
            .zip(fields)
            .map(|(column, field)| column_of(column, num_rows, &field.name))
            .collect::<PyResult<_>>()?;
        let numbers: Vec<Option<&[f64]>> = columns
            .iter()
            .map(|column| match column {
                Column::Numbers(array) => array.as_slice().map(Some).unwrap_or(None),
                Column::Cells(_) => None,
            })
            .collect();
        // A float64 column that is not contiguous (a strided view) is read value by value while holding the GIL.
        let strided: Vec<Option<Vec<f64>>> = columns
            .iter()
            .zip(&numbers)
            .map(|(column, slice)| match (column, slice) {
                (Column::Numbers(array), None) => Some(array.as_array().iter().copied().collect()),
                _ => None,
            })
            .collect();
        let cells: Vec<Option<&[Cell<'static>]>> = columns
            .iter()
            .map(|column| match column {
                Column::Cells(cells) => Some(cells.as_slice()),
                Column::Numbers(_) => None,
            })
            .collect();
        let options = ScoreOptions { explain, top_reasons };
        let pipeline = &self.pipeline;
        let outcomes = py
            .detach(|| {
                let rows: Vec<Vec<Cell<'_>>> = (0..num_rows)
                    .map(|row| {
                        (0..fields.len())
                            .map(|column| {
                                let number = numbers[column].or(strided[column].as_deref());
                                match (number, cells[column]) {
                                    (Some(values), _) => {
                                        let value = values[row];
                                        if value.is_nan() { Cell::Missing } else { Cell::Number(value) }
                                    }
                                    (None, Some(cells)) => cells[row].clone(),
                                    (None, None) => Cell::Missing,
                                }
                            })
                            .collect()
                    })
                    .collect();
                pipeline.score_batch(&rows, &options)
            })
            .map_err(rows_error)?;
        answer(py, pipeline, self.bare, &outcomes, num_rows, explain)
    }
}

fn answer<'py>(
    py: Python<'py>,
    pipeline: &Pipeline,
    bare: bool,
    outcomes: &[Outcome],
    num_rows: usize,
    explain: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let result = PyDict::new(py);
    let width = outcomes.first().map(|outcome| outcome.values.len()).unwrap_or(0);
    let values: Vec<f64> = outcomes.iter().flat_map(|outcome| outcome.values.iter().copied()).collect();
    result.set_item("values", PyArray1::from_vec(py, values).reshape([num_rows, width])?)?;
    let columns = pipeline.output_columns();
    // A bare model's output columns are its value columns, which `values` already holds.
    let has = |name: &str| !bare && columns.iter().any(|column| column == name);
    if has("probability") {
        let probability: Vec<f64> = outcomes.iter().map(|outcome| outcome.probability.unwrap_or(f64::NAN)).collect();
        result.set_item("probability", PyArray1::from_vec(py, probability))?;
    }
    if has("score") {
        let score: Vec<f64> = outcomes.iter().map(|outcome| outcome.score.unwrap_or(f64::NAN)).collect();
        result.set_item("score", PyArray1::from_vec(py, score))?;
    }
    if has("grade") {
        let grade: Vec<Option<&str>> = outcomes.iter().map(|outcome| outcome.grade.as_deref()).collect();
        result.set_item("grade", grade)?;
    }
    if has("decision") {
        let decision: Vec<Option<&str>> = outcomes.iter().map(|outcome| outcome.decision.as_deref()).collect();
        result.set_item("decision", decision)?;
    }
    if explain {
        let mut names: Vec<String> = pipeline.fields().iter().map(|field| field.name.clone()).collect();
        names.push("bias".to_string());
        let mut contributions = Vec::with_capacity(num_rows * names.len());
        let mut reasons = Vec::with_capacity(num_rows);
        for outcome in outcomes {
            let row = outcome.contributions.as_ref();
            contributions.extend(names.iter().map(|name| row.and_then(|row| row.get(name)).copied().unwrap_or(0.0)));
            let row_reasons: Vec<(String, String, String, f64)> = outcome
                .reasons
                .iter()
                .flatten()
                .map(|reason| (reason.code.clone(), reason.feature.clone(), reason.text.clone(), reason.contribution))
                .collect();
            reasons.push(row_reasons);
        }
        let width = names.len();
        result.set_item("contribution_names", names)?;
        result.set_item("contributions", PyArray1::from_vec(py, contributions).reshape([num_rows, width])?)?;
        result.set_item("reasons", reasons)?;
    }
    Ok(result)
}

/// Runs the `riskserve` command line with `args` (the program name first) and answers its exit status. The GIL is
/// released for as long as the command runs (`serve` runs until SIGTERM or Ctrl-C).
#[pyfunction]
fn run_cli(py: Python<'_>, args: Vec<String>) -> i32 {
    py.detach(|| riskserve_cli::run_from_args(args))
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Scorer>()?;
    module.add_function(wrap_pyfunction!(run_cli, module)?)?;
    module.add("ModelLoadError", module.py().get_type::<ModelLoadError>())?;
    module.add("RowsError", module.py().get_type::<RowsError>())?;
    Ok(())
}
