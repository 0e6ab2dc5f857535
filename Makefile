# kqa: `make app` runs the product on its bundled default KG, `make test` runs the tests.
# Both install what they need into .venv (torch from the pinned CPU wheel first).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
KQA    := $(VENV)/bin/kqa
PORT   ?= 8501
STAMP  := $(VENV)/.installed

.PHONY: install pack app prepare test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

# The bundled countries pack is built from registry packages (countryinfo, svg-country-flags).
pack: install
	$(PY) knowledge/countries/build.py

# Load the pack, build its indexes and train its model when missing (all idempotent).
prepare: pack
	$(KQA) kg load knowledge/countries --name countries --if-missing
	$(KQA) index build --kg countries
	$(KQA) train --kg countries --generated --if-missing

app: prepare
	$(VENV)/bin/streamlit run app.py --server.port $(PORT) --server.headless true --client.toolbarMode minimal \
		--browser.gatherUsageStats false

test: pack
	$(VENV)/bin/pytest -q

bench: install
	$(PY) benchmarks/load_metaqa.py

clean:
	rm -rf $(VENV) .cache knowledge/countries/data .pytest_cache
