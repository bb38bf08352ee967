import time
from multiprocessing import Process


class MyProcess(Process):
    def __init__(self,name):
        super().__init__()
        self.name=name
    def run(self):
        print('%s is running' % self.name)
        time.sleep(0.2)
        print('%s is done ' % self.name)

if __name__=='__main__':
    p1=MyProcess('alex')
    p1.start() #调动run函数执行
    print('主')
