"""Reports of qkdplan: figures, maps, the HTML design report, comparisons and paper reproductions."""
