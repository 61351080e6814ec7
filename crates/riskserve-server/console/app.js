// riskserve console (being written)
